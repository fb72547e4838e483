/**
 * The orchestrator's watch over running jobs' gpu-workers, on a real Redis with the real registry,
 * queues, relay, tracked jobs and reply publisher: when the gpu-worker that claimed a job leaves the registry, a
 * job that replied nothing is queued once more as attempt 2 (and the lost attempt is fenced off:
 * its writes and claims are refused, its BullMQ failure is not the job's), and a job that had
 * replied fails `WORKER_LOST`. A gpu-worker that is shutting down (`draining`) is alive; one with no
 * entry at all (Redis restarted empty) has `REGISTRY_TTL_MS` to write it again.
 */
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { after, before, describe, it } from "node:test";
import type { Redis } from "ioredis";
import { ReplyPublisher } from "../../gpu-worker/publish/reply-publisher.js";
import { RegistryPublisher } from "../../gpu-worker/registry/registry-publisher.js";
import { EphemeralJobs } from "../../orchestrator/jobs/job-persistence.js";
import { JobRecord } from "../../orchestrator/jobs/job-record.js";
import { JobSignals } from "../../orchestrator/jobs/job-signals.js";
import type { ModelQueues } from "../../orchestrator/jobs/model-queues.js";
import { jobOfQueueJob } from "../../orchestrator/jobs/queue-attempts.js";
import { type JobContext, TrackedJob } from "../../orchestrator/jobs/tracked-job.js";
import { WorkerWatch } from "../../orchestrator/jobs/worker-watch.js";
import { ModelRegistryReader } from "../../orchestrator/registry/model-registry-reader.js";
import { ReplyRelay } from "../../orchestrator/relay/reply-relay.js";
import { FernetKey, KeyRing } from "../../shared/crypto/index.js";
import type { ErrorInfo } from "../../shared/errors/index.js";
import { createLogger } from "../../shared/log.js";
import { RedisNames } from "../../shared/naming.js";
import type { JobPayload } from "../../shared/protocol/index.js";
import { closeRedis, createRedis } from "../../shared/redis/index.js";
import {
  deleteKeysWithPrefix,
  readyModelQueues,
  testRedisUrl,
  uniquePrefix,
} from "../support/redis.js";
import { holdsFor, waitFor } from "../support/wait-for.js";

const log = createLogger("test", { level: "error" });
const keyRing = new KeyRing([FernetKey.generate()]);
const registryTtlMs = 1000;

describe("the watch over running jobs' gpu-workers", () => {
  let url: string;
  let prefix: string;
  let names: RedisNames;
  let redis: Redis;
  let subscriber: Redis;
  let relay: ReplyRelay;
  let queues: ModelQueues;
  let watch: WorkerWatch;
  let context: JobContext;
  /** The tracked jobs, as the job service holds them. */
  const jobs = new Map<string, TrackedJob>();
  const ended: [string, ErrorInfo][] = [];

  const gpuWorker = async (workerId: string) => {
    const registry = new RegistryPublisher({ redis, names, workerId, ttlMs: registryTtlMs, log });
    await registry.announce(["tiny"], "ready");
    const publisher = new ReplyPublisher({
      redis,
      names,
      keyRing,
      streamTtlSeconds: 60,
      workerId,
      sharded: false,
      log,
    });
    return { registry, publisher };
  };

  /** A job as the job service starts one: tracked (its replies taken, watched), then queued. */
  const startJob = () => {
    const jobId = randomUUID();
    const payload: JobPayload = { v: 1, replyTo: relay.channel, task: "sealed" };
    const job = new TrackedJob(context, {
      record: new JobRecord(jobId),
      model: "tiny",
      deadline: Date.now() + 60_000,
      encryptOutput: false,
      payload,
      phase: "queuing",
    });
    jobs.set(jobId, job);
    job.markQueued();
    /** What the job's caller got: each chunk's number, and whether it is a delta or the end. */
    const received = () =>
      job.record.chunks.map((chunk) => [chunk.seq, "done" in chunk ? "done" : "delta"]);
    return { jobId, job, received };
  };

  const queuedData = async (queueJobId: string) => {
    const key = names.queueJob("tiny", queueJobId);
    const data = await redis.hget(key, "data");
    return data === null ? undefined : (JSON.parse(data) as JobPayload);
  };

  before(async () => {
    url = await testRedisUrl();
    prefix = uniquePrefix("watch");
    names = new RedisNames(prefix);
    redis = createRedis(url, `${prefix}-cmd`, log);
    subscriber = createRedis(url, `${prefix}-sub`, log);
    relay = new ReplyRelay({
      subscriber,
      redis,
      names,
      orchestratorId: "orch",
      targets: jobs,
      log,
    });
    await relay.start();
    queues = await readyModelQueues(redis, url, names, ["tiny"]);
    context = {
      keyRing,
      signals: new JobSignals({ redis, names, queues }),
      queues,
      relay,
      persistence: new EphemeralJobs(new JobSignals({ redis, names, queues })),
      requeueLost: true,
      continueLost: false,
      maxAttempts: 2,
      log,
      onEnded: (job) => {
        jobs.delete(job.id);
        if (job.record.error !== undefined) ended.push([job.id, job.record.error]);
      },
    };
    watch = new WorkerWatch({ redis, names, registryTtlMs, jobs: () => jobs.values(), log });
    watch.start();
  });

  after(async () => {
    watch?.close();
    await relay?.close();
    await queues?.close();
    await Promise.all([closeRedis(redis), closeRedis(subscriber)]);
    await deleteKeysWithPrefix(url, prefix);
  });

  it("queues a job that replied nothing once more, and fences the lost attempt off", async () => {
    const lost = await gpuWorker("gpu-a");
    const { jobId, job, received } = startJob();
    const stale = lost.publisher.forJob(jobId, relay.channel, 1);
    assert.equal(await stale.claim(), true);
    assert.equal(jobOfQueueJob(jobs, jobId), job, "the first attempt is the job's");
    await lost.registry.close();

    const retryId = RedisNames.queueJobId(jobId, 2);
    await waitFor(async () => (await queuedData(retryId)) !== undefined, 10_000, "attempt 2");
    assert.deepEqual(await queuedData(retryId), {
      v: 1,
      replyTo: relay.channel,
      task: "sealed",
      jobId,
      attempt: 2,
    });
    assert.equal(await redis.get(names.ownerKey(jobId)), "2:");
    assert.ok((await redis.pttl(names.ownerKey(jobId))) > 0, "the fence expires");
    assert.equal(job.queueJobId, retryId);
    assert.equal(
      jobOfQueueJob(jobs, jobId),
      undefined,
      "BullMQ's failure of attempt 1 is not the job's",
    );
    assert.equal(jobOfQueueJob(jobs, retryId), job);
    assert.deepEqual(ended, []);

    // The lost gpu-worker comes back: its reply is refused, and nothing reaches Redis.
    stale.text("late");
    await waitFor(() => stale.lost, 5000, "the stale writer to learn it lost the job");
    assert.equal(await redis.exists(names.deltaStream(jobId)), 0);
    const again = (await gpuWorker("gpu-c")).publisher.forJob(jobId, relay.channel, 1);
    assert.equal(await again.claim(), false, "attempt 1 cannot be claimed again");

    // Attempt 2 runs elsewhere; its replies are the job's, numbered from 0.
    const next = (await gpuWorker("gpu-b")).publisher.forJob(jobId, relay.channel, 2);
    assert.equal(await next.claim(), true);
    next.text("fresh");
    await next.end({
      kind: "done",
      finishReason: "stop",
      promptTokens: 1,
      completionTokens: 1,
      runMs: 1,
    });
    await waitFor(() => received().length === 2, 5000, "attempt 2's replies");
    assert.deepEqual(received(), [
      [0, "delta"],
      [1, "done"],
    ]);
    assert.equal(jobs.has(jobId), false, "its end ends its tracking");
  });

  it("takes a draining gpu-worker for alive, though no longer serving", async () => {
    const draining = await gpuWorker("gpu-e");
    const { jobId, job } = startJob();
    assert.equal(await draining.publisher.forJob(jobId, relay.channel, 1).claim(), true);
    await draining.registry.drain();
    const reader = new ModelRegistryReader({ redis, names, log });
    assert.equal((await reader.serving("tiny")).workerIds.includes("gpu-e"), false);
    // Twice the TTL: an entry not refreshed (as `draining`) would have lapsed by now.
    await holdsFor(() => ended.length === 0, 2 * registryTtlMs, "no job of it ends");
    assert.deepEqual(ended, []);
    assert.equal(job.queueJobId, jobId, "not queued again");
    await draining.registry.close();
    job.forget();
  });

  it("gives a gpu-worker found with no entry REGISTRY_TTL_MS to write it again, then takes it for lost", async () => {
    const back = await gpuWorker("gpu-f");
    const { jobId, job } = startJob();
    assert.equal(await back.publisher.forJob(jobId, relay.channel, 1).claim(), true);
    // Its entry gone, as after Redis restarted empty: it lives, and its next heartbeat (every
    // third of the TTL) writes the entry again.
    await redis.hdel(names.modelRegistry("tiny"), "gpu-f");
    await holdsFor(
      () => ended.length === 0 && job.queueJobId === jobId,
      2 * registryTtlMs,
      "the job stays with its gpu-worker",
    );
    assert.equal(await redis.hexists(names.modelRegistry("tiny"), "gpu-f"), 1, "written again");

    // Gone for good (its entry deleted, no heartbeat): lost once it has had none for the TTL.
    const goneAt = performance.now();
    await back.registry.close();
    const retryId = RedisNames.queueJobId(jobId, 2);
    await waitFor(async () => (await queuedData(retryId)) !== undefined, 10_000, "attempt 2");
    const tookMs = performance.now() - goneAt;
    assert.ok(tookMs >= 0.8 * registryTtlMs, `lost after ${Math.round(tookMs)} ms, not at once`);
    assert.deepEqual(ended, []);
    job.forget();
  });

  it("fails a job that had replied WORKER_LOST, and queues nothing", async () => {
    const lost = await gpuWorker("gpu-d");
    const { jobId, received } = startJob();
    const replies = lost.publisher.forJob(jobId, relay.channel, 1);
    assert.equal(await replies.claim(), true);
    replies.text("some text");
    await waitFor(() => received().length === 1, 5000, "the first reply");
    await lost.registry.close();
    await waitFor(() => ended.some(([id]) => id === jobId), 10_000, "the job to fail");
    assert.equal(ended.find(([id]) => id === jobId)?.[1].code, "WORKER_LOST");
    assert.equal(await queuedData(RedisNames.queueJobId(jobId, 2)), undefined);
    assert.equal(jobs.has(jobId), false, "its end ends its tracking");
  });
});
