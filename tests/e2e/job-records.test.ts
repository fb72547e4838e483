/**
 * Nothing accepted is forgotten: each job's record lives in Redis (sealed, with an expiry), so an
 * orchestrator killed and restarted answers for every job accepted before (a finished one, one
 * that was running, one that was waiting) and tracks the unfinished ones to their end; and when
 * Redis restarts empty, the jobs it lost fail at once with `JOB_LOST` instead of waiting for
 * their timeout.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { Redis } from "ioredis";
import { isFinalChunk, type StreamChunk } from "../../shared/protocol/index.js";
import { type RedisServerProcess, startRedisServer } from "../../shared/redis/index.js";
import { assertOneNumbering } from "../support/chunks.js";
import { metricValue } from "../support/metrics.js";
import { tinyModelPath } from "../support/models.js";
import { keysWithPrefix } from "../support/redis.js";
import { type JobView, TestStack, textOf } from "../support/stack.js";
import { waitFor } from "../support/wait-for.js";

const greedy = (prompt: string, maxTokens: number) => ({
  prompt,
  sampling_params: { max_tokens: maxTokens, temperature: 0 },
});

async function statusOf(stack: TestStack, id: string): Promise<JobView> {
  return (await stack.get(`/status/${id}`)) as JobView;
}

describe("an orchestrator killed and restarted with jobs in flight", () => {
  let stack: TestStack;

  before(async () => {
    stack = await TestStack.start({
      models: `tiny=${await tinyModelPath()}`,
      // One sequence: the second job waits in the queue while the first runs. A short registry
      // TTL: the dead orchestrator's presence lapses (and its jobs are adopted) within 1.5 s.
      env: { MODEL_SEQUENCES: "1", REGISTRY_TTL_MS: "1500" },
      label: "records",
    });
  });

  after(async () => {
    await stack?.stop();
  });

  it("answers for each job accepted before, and runs the unfinished ones to their end", {
    timeout: 180_000,
  }, async () => {
    const done = await stack.runsync(greedy("the cat", 12));
    assert.equal(done.status, "COMPLETED");
    const running = await stack.run(greedy("the dog", 1500));
    await waitFor(
      async () => (await statusOf(stack, running.id)).status === "IN_PROGRESS",
      30_000,
      "the long job runs",
    );
    const waiting = await stack.run(greedy("the sun", 24));
    assert.equal((await statusOf(stack, waiting.id)).status, "IN_QUEUE");

    await stack.restartOrchestrator("SIGKILL");

    // A finished job: its whole result, from its record in Redis.
    const again = await statusOf(stack, done.id);
    assert.equal(again.status, "COMPLETED");
    assert.deepEqual(again.output, done.output);

    // The unfinished ones: adopted by the new orchestrator, streamed whole to their end.
    await stack.explain(
      waitFor(
        () => stack.logs.filter((line) => line.includes("job adopted")).length >= 2,
        30_000,
        "both unfinished jobs adopted",
      ),
    );
    assert.equal(
      await metricValue(stack.url, 'llmpool_requests_recovered_total{model="tiny",how="adopted"}'),
      2,
      "both adoptions counted in the new orchestrator's metrics",
    );
    const long = await stack.explain(stack.streamAll(running.id));
    assert.equal(long.status, "COMPLETED");
    assertOneNumbering(long.chunks);
    const longFinal = long.chunks.at(-1);
    assert.ok(longFinal !== undefined && isFinalChunk(longFinal));
    assert.equal(longFinal.usage.completion_tokens, 1500);
    const queued = await stack.explain(stack.streamAll(waiting.id));
    assert.equal(queued.status, "COMPLETED");
    assertOneNumbering(queued.chunks);
    const cold = await stack.runsync(greedy("the sun", 24));
    assert.equal(textOf(queued.chunks), textOf(cold.output ?? []), "the same text as a fresh run");

    // Each record is sealed and expires.
    const redis = new Redis(stack.redisUrl);
    try {
      const records = (await keysWithPrefix(stack.redisUrl, stack.prefix)).filter((key) =>
        key.includes(":job:"),
      );
      assert.ok(records.length >= 4, `records: ${records.length}`);
      for (const key of records) {
        assert.match((await redis.get(key)) ?? "", /^gAAAA/, `${key} holds a Fernet token only`);
        assert.ok((await redis.pttl(key)) > 0, `${key} expires`);
      }
    } finally {
      redis.disconnect();
    }
  });
});

describe("two orchestrators on one Redis", () => {
  let stack: TestStack;

  before(async () => {
    stack = await TestStack.start({
      models: `tiny=${await tinyModelPath()}`,
      env: { REGISTRY_TTL_MS: "1500" },
      label: "records-two",
    });
  });

  after(async () => {
    await stack?.stop();
  });

  it("the other one streams a running job's chunks as they come, each once, then its result", {
    timeout: 180_000,
  }, async () => {
    const other = await stack.addOrchestrator();
    const job = await stack.run(greedy("the dog", 4000));
    const poll = async (route: string) =>
      (await (await fetch(`${other}${route}/${job.id}`)).json()) as {
        status: string;
        output?: StreamChunk[];
        stream?: { output: StreamChunk }[];
      };
    // While it runs: in progress there too.
    await stack.explain(
      waitFor(
        async () => (await poll("/status")).status === "IN_PROGRESS",
        60_000,
        "the other orchestrator to show the job in progress",
      ),
    );
    // `/stream` there hands out the chunks as they come, each once, to the end.
    const chunks: StreamChunk[] = [];
    let whileRunning = 0;
    for (;;) {
      const page = await poll("/stream");
      const fresh = (page.stream ?? []).map(({ output }) => output);
      chunks.push(...fresh);
      if (page.status === "IN_PROGRESS") whileRunning += fresh.length;
      if (page.status === "COMPLETED" && fresh.length === 0) break;
      assert.ok(["IN_QUEUE", "IN_PROGRESS", "COMPLETED"].includes(page.status), page.status);
    }
    assert.ok(whileRunning > 0, "chunks came while the job ran");
    assertOneNumbering(chunks);
    const own = (await statusOf(stack, job.id)).output ?? [];
    assert.deepEqual(chunks, own, "the same chunks as the job's own orchestrator");
  });
});

describe("Redis restarted empty under queued jobs", () => {
  let redis: RedisServerProcess;
  let stack: TestStack;

  before(async () => {
    redis = await startRedisServer();
    stack = await TestStack.start({
      models: `tiny=${await tinyModelPath()}`,
      env: { MODEL_SEQUENCES: "1", REGISTRY_TTL_MS: "1500", JOB_LOCK_MS: "1500" },
      redisUrl: redis.url,
      label: "lost",
    });
  });

  after(async () => {
    await stack?.stop();
    await redis?.close();
  });

  // Bounded: without the check, the lost jobs would wait for JOB_TIMEOUT_MS (10 min).
  it("fails the jobs Redis lost with JOB_LOST at once, and serves the next", {
    timeout: 180_000,
  }, async () => {
    const running = await stack.run(greedy("the dog", 4000));
    await waitFor(
      async () => (await statusOf(stack, running.id)).status === "IN_PROGRESS",
      30_000,
      "the long job runs",
    );
    const waiting = [await stack.run(greedy("the sun", 8)), await stack.run(greedy("a cat", 8))];
    for (const job of waiting) assert.equal((await statusOf(stack, job.id)).status, "IN_QUEUE");

    const port = Number(new URL(redis.url).port);
    await redis.close();
    redis = await startRedisServer({ port });
    const restartedAt = performance.now();

    for (const job of waiting) {
      const ended = await stack.explain(stack.streamAll(job.id));
      assert.equal(ended.status, "FAILED");
      assert.equal(JSON.parse(ended.error ?? "{}").code, "JOB_LOST");
    }
    // Generous: a heartbeat is a third of REGISTRY_TTL_MS; reconnecting takes a few seconds.
    assert.ok(performance.now() - restartedAt < 30_000, "failed at once, not at the job timeout");
    const longEnd = await stack.explain(stack.streamAll(running.id));
    assert.ok(["FAILED", "COMPLETED"].includes(longEnd.status), longEnd.status);

    let next: JobView | undefined;
    await stack.explain(
      waitFor(
        async () => {
          next = await stack.runsync(greedy("the sun", 8));
          return next.status === "COMPLETED";
        },
        60_000,
        "a new job completes once the gpu-worker is back on the new Redis",
      ),
    );
    assert.ok(textOf(next?.output ?? []).length > 0);
  });
});
