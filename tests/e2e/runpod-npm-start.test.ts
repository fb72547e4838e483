/**
 * `npm start` on a RunPod worker: the launcher runs the gpu-worker and the orchestrator, which
 * runs the RunPod job loop instead of the local API; SIGTERM stops both cleanly; a dead
 * gpu-worker makes it ask the platform for a replacement and exit non-zero.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import { FernetKey } from "../../shared/crypto/index.js";
import type { StreamChunk } from "../../shared/protocol/index.js";
import { FakeRunpodPlatform } from "../fakes/runpod-platform.js";
import { tinyModelPath } from "../support/models.js";
import { spawnNpmStart } from "../support/npm-start.js";
import { deleteKeysWithPrefix, testRedisUrl, uniquePrefix } from "../support/redis.js";
import { textOf } from "../support/stack.js";

describe("npm start in RunPod mode", () => {
  let platform: FakeRunpodPlatform;
  let redisUrl: string;
  let prefix: string;
  let dataDir: string;
  const key = FernetKey.generate();

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

  /** Runs `npm start`'s launcher as RunPod runs the image. */
  async function launch(env: Record<string, string> = {}) {
    return spawnNpmStart({
      ...platform.env(),
      RUNPOD_ENDPOINT_ID: "fake-endpoint",
      ENCRYPTION_KEY: key.exportKey(),
      REDIS_URL: redisUrl,
      REDIS_PREFIX: prefix,
      DATA_DIR: dataDir,
      MODELS: `tiny=${await tinyModelPath()}`,
      ...env,
    });
  }

  const job = (id: string, maxTokens: number) => ({
    id,
    input: {
      encrypted_input: key.encrypt(
        // Greedy: the tiny model then never ends its story early, so a long job is still running
        // when a test kills the gpu-worker under it.
        JSON.stringify({
          prompt: "the dog",
          sampling_params: { max_tokens: maxTokens, temperature: 0 },
        }),
      ),
    },
  });

  it("runs the job loop, serves a job, and exits 0 on SIGTERM", async () => {
    const { launcher, output, exited } = await launch();
    try {
      platform.enqueue(job("npm-start-job", 12));
      const post = await platform.waitForOutput("npm-start-job", 90_000);
      assert.ok(textOf(post.body.output as StreamChunk[]).length > 0);
      assert.ok(platform.pings.length > 0, "it pings");
      launcher.kill("SIGTERM");
      assert.equal(await exited, 0, output.join(""));
      const lines = output.join("").split("\n").filter(Boolean);
      assert.ok(lines.some((line) => line.includes("RunPod worker stopped")));
      assert.ok(!lines.some((line) => line.includes("orchestrator ready")), "no local API");
      for (const line of lines) {
        const parsed = JSON.parse(line) as Record<string, unknown>;
        assert.ok("requestId" in parsed && "message" in parsed && "level" in parsed, line);
      }
    } finally {
      if (launcher.exitCode === null) launcher.kill("SIGKILL");
    }
  });

  it("asks to be replaced (stopPod) and exits non-zero when its gpu-worker dies", async () => {
    const { launcher, output, exited } = await launch({ JOB_LOCK_MS: "1000" });
    try {
      platform.enqueue(job("npm-start-doomed", 3000));
      await platform.until(() => platform.streamed("npm-start-doomed").length > 0, 90_000);
      // The launcher's own child: the gpu-worker process it started.
      const found = spawnSync("pgrep", ["-P", String(launcher.pid), "-f", "gpu-worker/main.js"], {
        encoding: "utf8",
      });
      const gpuWorkerPid = Number(found.stdout.trim().split("\n")[0]);
      assert.ok(gpuWorkerPid > 0, `the gpu-worker's pid: ${found.stdout} ${found.stderr}`);
      process.kill(gpuWorkerPid, "SIGKILL");
      const post = await platform.waitForOutput("npm-start-doomed", 30_000);
      assert.equal(post.body.stopPod, true, JSON.stringify({ ...post.body, output: undefined }));
      // Found lost by the registry (WORKER_LOST), or by the fatal watch first (INTERNAL).
      const { code } = JSON.parse(post.body.error as string) as { code: string };
      assert.ok(["WORKER_LOST", "INTERNAL"].includes(code), code);
      assert.notEqual(await exited, 0, output.join(""));
    } finally {
      if (launcher.exitCode === null) launcher.kill("SIGKILL");
    }
  });
});
