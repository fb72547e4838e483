/**
 * `npm start` on a RunPod worker: the launcher runs the gpu-worker and the orchestrator, which
 * runs the RunPod job loop instead of the local API; SIGTERM stops both cleanly.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { FernetKey } from "../../shared/crypto/index.js";
import type { StreamChunk } from "../../shared/protocol/index.js";
import { FakeRunpodPlatform } from "../fakes/runpod-platform.js";
import { tinyModelPath } from "../support/models.js";
import { deleteKeysWithPrefix, testRedisUrl, uniquePrefix } from "../support/redis.js";
import { textOf } from "../support/stack.js";

const startEntry = fileURLToPath(new URL("../../scripts/start.js", import.meta.url));

describe("npm start in RunPod mode", () => {
  let platform: FakeRunpodPlatform;
  let redisUrl: string;
  let prefix: string;
  let dataDir: string;
  const key = FernetKey.generate();
  const output: string[] = [];

  before(async () => {
    platform = await FakeRunpodPlatform.start({ apiKey: "npm-start-key", holdMs: 300 });
    redisUrl = await testRedisUrl();
    prefix = uniquePrefix("rp-start");
    dataDir = await mkdtemp(path.join(os.tmpdir(), "pool-rp-start-"));
  });

  after(async () => {
    await platform?.close();
    await deleteKeysWithPrefix(redisUrl, prefix);
    await rm(dataDir, { recursive: true, force: true });
  });

  it("runs the job loop, serves a job, and exits 0 on SIGTERM", async () => {
    const launcher = spawn(process.execPath, [startEntry], {
      env: {
        PATH: process.env.PATH ?? "",
        HOME: os.homedir(),
        ...platform.env(),
        RUNPOD_ENDPOINT_ID: "fake-endpoint",
        ENCRYPTION_KEY: key.exportKey(),
        REDIS_URL: redisUrl,
        REDIS_PREFIX: prefix,
        DATA_DIR: dataDir,
        MODELS: `tiny=${await tinyModelPath()}`,
        LLAMA_GPU: "off",
        LLAMA_THREADS: "1",
      },
      stdio: ["ignore", "pipe", "pipe"],
    });
    for (const stream of [launcher.stdout, launcher.stderr]) {
      stream.setEncoding("utf8").on("data", (text: string) => output.push(text));
    }
    const exited = new Promise<number | null>((resolve) => launcher.once("exit", resolve));
    try {
      platform.enqueue({
        id: "npm-start-job",
        input: {
          encrypted_input: key.encrypt(
            JSON.stringify({ prompt: "the dog", sampling_params: { max_tokens: 12 } }),
          ),
        },
      });
      const post = await platform.waitForOutput("npm-start-job", 90_000);
      assert.ok(textOf(post.body.output as StreamChunk[]).length > 0);
      assert.ok(platform.pings.length > 0, "it pings");
      launcher.kill("SIGTERM");
      assert.equal(await exited, 0, output.join(""));
      const lines = output.join("").split("\n").filter(Boolean);
      assert.ok(lines.some((line) => line.includes("RunPod worker stopped")));
      assert.ok(!lines.some((line) => line.includes("local API listening")));
      for (const line of lines) {
        const parsed = JSON.parse(line) as Record<string, unknown>;
        assert.ok("requestId" in parsed && "message" in parsed && "level" in parsed, line);
      }
    } finally {
      if (launcher.exitCode === null) launcher.kill("SIGKILL");
    }
  });
});
