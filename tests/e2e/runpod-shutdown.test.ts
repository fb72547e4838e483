/**
 * How a RunPod worker ends: on SIGTERM it stops taking jobs, finishes and posts the ones it
 * holds, and exits 0; when its gpu-worker or Redis is gone for good it posts the held jobs'
 * errors with `stopPod: true` (the platform replaces it) and exits non-zero. (A job the dead
 * gpu-worker was running fails `WORKER_LOST`, with `stopPod`, as soon as its registry entry lapses.)
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { isFinalChunk, type StreamChunk } from "../../shared/protocol/index.js";
import { type RedisServerProcess, startRedisServer } from "../../shared/redis/index.js";
import { FakeRunpodPlatform } from "../fakes/runpod-platform.js";
import { tinyModelPath } from "../support/models.js";
import { greedyPlatformJob, holdRunningAndWaiting } from "../support/runpod-jobs.js";
import { TestStack } from "../support/stack.js";

const apiKey = "rp-shutdown-key";

describe("RunPod worker: SIGTERM with jobs in flight", () => {
  let platform: FakeRunpodPlatform;
  let stack: TestStack;

  before(async () => {
    platform = await FakeRunpodPlatform.start({ apiKey, holdMs: 300 });
    stack = await TestStack.start({
      models: `tiny=${await tinyModelPath()}`,
      runpod: platform.env(),
      // Two slots by default (1 thread × 2 sequences).
      env: { MODEL_SEQUENCES: "2", CONTEXT_SIZE: "2048", SHUTDOWN_TIMEOUT_MS: "60000" },
      label: "rp-sigterm",
    });
  });

  after(async () => {
    await stack?.stop();
    await platform?.close();
  });

  it("posts every held job, takes nothing more, and exits 0", async () => {
    platform.enqueue(
      greedyPlatformJob(stack, "held-1", 1200),
      greedyPlatformJob(stack, "held-2", 1200),
      greedyPlatformJob(stack, "left-on-platform", 10),
    );
    await stack.explain(
      platform.until(
        () => platform.streamed("held-1").length > 0 && platform.streamed("held-2").length > 0,
        30_000,
        "both held jobs to stream",
      ),
    );
    assert.equal(platform.output("held-1"), undefined, "still running when signalled");
    const signalledAt = performance.now();
    stack.signal("SIGTERM");
    const codes = await stack.exited();
    assert.deepEqual(codes, [0, 0], "both processes exit 0");
    for (const id of ["held-1", "held-2"]) {
      const post = platform.output(id);
      assert.ok(post, `${id} was posted`);
      assert.ok(post.at > signalledAt, `${id} finished after the signal`);
      const output = post.body.output as StreamChunk[];
      const final = output.at(-1);
      assert.ok(final && isFinalChunk(final) && final.finish_reason === "length");
      assert.equal(final.usage.completion_tokens, 1200);
    }
    const late = platform.takes.filter((take) => take.at > signalledAt);
    assert.deepEqual(late, [], "no job take after the signal");
    assert.equal(platform.output("left-on-platform"), undefined);
    assert.ok(!platform.takes.some((t) => t.jobIds.includes("left-on-platform")));
  });
});

describe("RunPod worker: a fault it cannot survive", () => {
  let platform: FakeRunpodPlatform;
  let stack: TestStack;

  before(async () => {
    platform = await FakeRunpodPlatform.start({ apiKey, holdMs: 300 });
    stack = await TestStack.start({
      models: `tiny=${await tinyModelPath()}`,
      runpod: platform.env(),
      // Two jobs held: one runs, one waits in the model's queue behind it.
      env: {
        MODEL_SEQUENCES: "1",
        MAX_CONCURRENCY: "2",
        CONTEXT_SIZE: "4096",
        JOB_LOCK_MS: "1000",
      },
      label: "rp-fatal",
    });
  });

  after(async () => {
    await stack?.stop();
    await platform?.close();
  });

  it("posts the held job's error with stopPod when the gpu-worker dies, then exits non-zero", async () => {
    await holdRunningAndWaiting(
      platform,
      stack,
      { id: "doomed", maxTokens: 3000 },
      { id: "waiting", maxTokens: 8 },
    );
    await stack.killGpuWorkers("SIGKILL");
    // The running job: its gpu-worker is lost (retryable elsewhere), and this worker, whose only
    // gpu-worker that was, asks to be replaced.
    const lost = await stack.explain(platform.waitForOutput("doomed", 30_000));
    assert.equal(lost.body.stopPod, true);
    assert.equal((JSON.parse(lost.body.error as string) as { code: string }).code, "WORKER_LOST");
    // The waiting one can never run here: the worker asks to be replaced.
    const post = await stack.explain(platform.waitForOutput("waiting", 30_000));
    assert.equal(post.body.stopPod, true);
    const error = JSON.parse(post.body.error as string) as { code: string; message: string };
    assert.equal(error.code, "INTERNAL");
    assert.match(error.message, /no gpu-worker/);
    const orchestrator = stack.orchestrator;
    assert.ok(orchestrator);
    const code = await new Promise<number | null>((resolve) => {
      if (orchestrator.exitCode !== null) resolve(orchestrator.exitCode);
      else orchestrator.once("exit", (exitCode) => resolve(exitCode));
    });
    assert.equal(code, 1);
  });
});

describe("RunPod worker: Redis gone for good", () => {
  let redis: RedisServerProcess;
  let platform: FakeRunpodPlatform;
  let stack: TestStack;

  before(async () => {
    // A Redis of this test's own, to stop.
    redis = await startRedisServer();
    platform = await FakeRunpodPlatform.start({ apiKey, holdMs: 300 });
    stack = await TestStack.start({
      models: `tiny=${await tinyModelPath()}`,
      runpod: platform.env(),
      redisUrl: redis.url,
      env: {
        MODEL_SEQUENCES: "1",
        CONTEXT_SIZE: "4096",
        JOB_LOCK_MS: "1000",
        SHUTDOWN_TIMEOUT_MS: "2000",
      },
      label: "rp-redis-gone",
    });
  });

  after(async () => {
    // The gpu-worker's SIGTERM shutdown without Redis is bounded (shutdown-without-redis.test).
    await stack?.stop();
    await platform?.close();
    await redis?.close();
  });

  it("posts the held job's error with stopPod, then exits non-zero", async () => {
    platform.enqueue(greedyPlatformJob(stack, "stranded", 3000));
    await stack.explain(
      platform.until(() => platform.streamed("stranded").length > 0, 30_000, "the job to stream"),
    );
    await redis.close();
    const post = await stack.explain(platform.waitForOutput("stranded", 60_000));
    assert.equal(post.body.stopPod, true);
    const error = JSON.parse(post.body.error as string) as { code: string; message: string };
    assert.equal(error.code, "INTERNAL");
    assert.match(error.message, /Redis/);
    const orchestrator = stack.orchestrator;
    assert.ok(orchestrator);
    const code = await new Promise<number | null>((resolve) => {
      if (orchestrator.exitCode !== null) resolve(orchestrator.exitCode);
      else orchestrator.once("exit", (exitCode) => resolve(exitCode));
    });
    assert.equal(code, 1);
  });
});
