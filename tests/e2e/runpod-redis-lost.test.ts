/**
 * A RunPod worker whose Redis comes back without its jobs (restarted empty: no persistence): the
 * job that was running and the one waiting behind it end `JOB_LOST` within seconds of the
 * reconnect, instead of at their execution timeout (the RunPod job loop keeps no job records, so
 * it is the reconnect that makes it look), and the worker serves the next job.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { type RedisServerProcess, startRedisServer } from "../../shared/redis/index.js";
import { FakeRunpodPlatform } from "../fakes/runpod-platform.js";
import { tinyModelPath } from "../support/models.js";
import { greedyPlatformJob, holdRunningAndWaiting } from "../support/runpod-jobs.js";
import { TestStack } from "../support/stack.js";

const apiKey = "rp-redis-lost-key";

describe("RunPod worker: Redis restarted empty under running jobs", { timeout: 300_000 }, () => {
  let redis: RedisServerProcess;
  let platform: FakeRunpodPlatform;
  let stack: TestStack;

  before(async () => {
    // A Redis of this test's own, to restart empty on the same port.
    redis = await startRedisServer();
    platform = await FakeRunpodPlatform.start({ apiKey, holdMs: 300 });
    stack = await TestStack.start({
      models: `tiny=${await tinyModelPath()}`,
      redisUrl: redis.url,
      runpod: platform.env(),
      // Two jobs held: one runs, one waits in the model's queue behind it.
      env: { MODEL_SEQUENCES: "1", MAX_CONCURRENCY: "2", CONTEXT_SIZE: "4096" },
      label: "rp-redis-lost",
    });
  });

  after(async () => {
    await stack?.stop();
    await platform?.close();
    await redis?.close();
  });

  it("ends the running and the waiting job JOB_LOST at the reconnect, then serves", async () => {
    await holdRunningAndWaiting(
      platform,
      stack,
      { id: "running", maxTokens: 3000 },
      { id: "waiting", maxTokens: 8 },
    );
    const port = Number(new URL(redis.url).port);
    await redis.close();
    redis = await startRedisServer({ port });
    const restartedAt = performance.now();
    for (const id of ["running", "waiting"]) {
      const post = await stack.explain(platform.waitForOutput(id, 30_000));
      const error = JSON.parse(String(post.body.error)) as { code: string };
      assert.equal(error.code, "JOB_LOST", `${id}: ${String(post.body.error)}`);
    }
    const tookMs = Math.round(performance.now() - restartedAt);
    process.stdout.write(`# both jobs JOB_LOST ${tookMs} ms after Redis came back empty\n`);
    // The gpu-worker announces its model again on the new Redis; the next job completes.
    platform.enqueue(greedyPlatformJob(stack, "after", 8));
    const after = await stack.explain(platform.waitForOutput("after", 60_000));
    assert.equal(after.body.error, undefined, String(after.body.error));
  });
});
