/**
 * The orchestrator's "orchestrator ready" line comes only once its local API listens, and says
 * what a first job would meet: the models a gpu-worker serves, or that it waits for gpu-workers to
 * announce them. A port in use stops it (exit 2) with no "ready" line before the error.
 */
import assert from "node:assert/strict";
import net from "node:net";
import { after, before, describe, it } from "node:test";
import { FernetKey } from "../../shared/crypto/index.js";
import { freePort } from "../../shared/redis/index.js";
import { tinyModelPath } from "../support/models.js";
import { deleteKeysWithPrefix, testRedisUrl, uniquePrefix } from "../support/redis.js";
import { runEntry, runEntryToExit } from "../support/run-entry.js";
import { TestStack } from "../support/stack.js";
import { waitFor } from "../support/wait-for.js";

/** The JSON log lines of `output` (LOG_FORMAT=json). */
const jsonLines = (output: string) =>
  output.split("\n").flatMap((line) => {
    try {
      return [JSON.parse(line) as Record<string, unknown>];
    } catch {
      return [];
    }
  });

describe("the orchestrator's ready line", () => {
  let redisUrl: string;
  let prefix: string;

  before(async () => {
    redisUrl = await testRedisUrl();
    prefix = uniquePrefix("ready-log");
  });
  after(async () => {
    await deleteKeysWithPrefix(redisUrl, prefix);
  });

  const env = async (port: number) => ({
    REDIS_URL: redisUrl,
    REDIS_PREFIX: prefix,
    ENCRYPTION_KEY: FernetKey.generate().exportKey(),
    MODELS: `tiny=${await tinyModelPath()}`,
    HOST: "127.0.0.1",
    PORT: String(port),
    LOG_FORMAT: "json",
    LOG_LEVEL: "info",
  });

  it("comes once the port is bound, saying it waits for gpu-workers", async () => {
    const port = await freePort();
    const orchestrator = runEntry("orchestrator/main.js", await env(port));
    try {
      const ready = () =>
        jsonLines(orchestrator.output()).filter((line) => line.message === "orchestrator ready");
      await waitFor(
        () => {
          assert.equal(orchestrator.child.exitCode, null, orchestrator.output());
          return ready().length > 0;
        },
        60_000,
        "the ready line",
      );
      // At once, no retry: the line comes after the listen.
      const health = await fetch(`http://127.0.0.1:${port}/health`);
      assert.equal(health.status, 200);
      const [line] = ready();
      assert.equal(line?.address, `http://127.0.0.1:${port}`);
      assert.equal(line?.modelsReady, "none");
      assert.equal(line?.waitingForGpuWorkers, "tiny");
    } finally {
      orchestrator.child.kill("SIGTERM");
      assert.equal((await orchestrator.ended).code, 0);
    }
  });

  it("is not logged before a port-in-use failure", async () => {
    const taken = net.createServer();
    const port = await new Promise<number>((resolve) => {
      taken.listen(0, "127.0.0.1", () => {
        const address = taken.address();
        resolve(typeof address === "object" && address !== null ? address.port : 0);
      });
    });
    try {
      const ran = await runEntryToExit("orchestrator/main.js", await env(port), 60_000);
      assert.equal(ran.code, 2, ran.output);
      assert.match(ran.output, new RegExp(`PORT ${port} on 127\\.0\\.0\\.1 is in use`));
      assert.doesNotMatch(ran.output, /ready/i);
    } finally {
      taken.close();
    }
  });

  it("names the models a gpu-worker serves", async () => {
    const stack = await TestStack.start({
      models: `tiny=${await tinyModelPath()}`,
      label: "ready-log",
    });
    try {
      const orchestrator = await stack.restartOrchestrator("SIGTERM");
      const line = stack.logsOf(orchestrator).find((text) => text.includes("orchestrator ready"));
      assert.match(
        line ?? "",
        /orchestrator ready address=http:\/\/127\.0\.0\.1:\d+ auth=none modelsReady=tiny$/,
      );
    } finally {
      await stack.stop();
    }
  });
});
