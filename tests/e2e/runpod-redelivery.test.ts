/**
 * A RunPod job delivered again to a worker that no longer remembers it (the worker restarted; the
 * platform gives the job again when it got no result). Redis still holds the earlier run: ended
 * (its owner key marked so, its finished entry kept for the dashboard, under the same id) or still
 * under way on the gpu-worker for an orchestrator that is gone. Either way the job runs again and
 * is answered in full, once; the run under way is fenced off and stops.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { Redis } from "ioredis";
import type { StreamChunk } from "../../shared/protocol/index.js";
import { FakeRunpodPlatform } from "../fakes/runpod-platform.js";
import { assertOneNumbering } from "../support/chunks.js";
import { tinyModelPath } from "../support/models.js";
import { greedyPlatformJob } from "../support/runpod-jobs.js";
import { TestStack, textOf } from "../support/stack.js";

const apiKey = "rp-redelivery-key";

describe("RunPod worker: a job delivered again after a restart", { timeout: 300_000 }, () => {
  let platform: FakeRunpodPlatform;
  let stack: TestStack;
  let redis: Redis;

  before(async () => {
    platform = await FakeRunpodPlatform.start({ apiKey, holdMs: 300 });
    stack = await TestStack.start({
      models: `tiny=${await tinyModelPath()}`,
      runpod: platform.env(),
      env: { MODEL_SEQUENCES: "1", MAX_CONCURRENCY: "2", CONTEXT_SIZE: "4096" },
      label: "rp-redelivery",
    });
    redis = new Redis(stack.redisUrl, { maxRetriesPerRequest: 1 });
  });

  after(async () => {
    redis?.disconnect();
    await stack?.stop();
    await platform?.close();
  });

  const posts = (jobId: string) => platform.outputPosts.filter((post) => post.jobId === jobId);
  const runsOf = (jobId: string) =>
    stack.logs.filter((line) => line.includes("job finished") && line.includes(`jobId=${jobId}`));

  it("runs a job whose earlier run ended again, to the same answer", async () => {
    const job = greedyPlatformJob(stack, "again-ended", 16);
    platform.enqueue(job);
    const first = await stack.explain(platform.waitForOutput(job.id));
    assert.equal(first.body.error, undefined, String(first.body.error));
    // Redis keeps the run's `ended` owner mark and its finished queue entry (same BullMQ id).
    assert.equal(await redis.get(stack.names.ownerKey(job.id)), "ended");

    await stack.restartOrchestrator("SIGKILL");
    platform.enqueue(job);
    await stack.explain(platform.until(() => posts(job.id).length === 2));
    const second = posts(job.id)[1];
    assert.equal(second?.body.error, undefined, String(second?.body.error));
    const [a, b] = [first, second].map((post) => post?.body.output as StreamChunk[]);
    assertOneNumbering(b ?? []);
    assert.ok(textOf(a ?? []).length > 0);
    assert.equal(textOf(b ?? []), textOf(a ?? []), "the same greedy text");
    assert.equal(runsOf(job.id).length, 2, "generated again, by the new worker");
  });

  it("fences off a run still under way for the lost worker, and answers the job in full", async () => {
    const job = greedyPlatformJob(stack, "again-running", 3000);
    platform.enqueue(job);
    await stack.explain(
      platform.until(() => platform.streamed(job.id).length > 0, 30_000, "the job to stream"),
    );
    await stack.restartOrchestrator("SIGKILL");
    // With one sequence, the new attempt waits for the run under way: it must stop, not finish.
    platform.enqueue(job);
    const post = await stack.explain(platform.waitForOutput(job.id, 120_000));
    assert.equal(post.body.error, undefined, String(post.body.error));
    const chunks = post.body.output as StreamChunk[];
    assertOneNumbering(chunks);
    const final = chunks.at(-1) as { usage?: { completion_tokens?: number } } | undefined;
    assert.equal(final?.usage?.completion_tokens, 3000, "the whole answer");
    assert.equal(runsOf(job.id).length, 1, `one run finished:\n${runsOf(job.id).join("\n")}`);
    assert.ok(
      stack.logs.some((line) => line.includes("job lost") && line.includes(`jobId=${job.id}`)),
      "the earlier run was stopped as lost",
    );
    assert.equal(await redis.get(stack.names.ownerKey(job.id)), "ended");
  });
});
