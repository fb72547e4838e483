/**
 * A stream that survives the loss of its gpu-worker: the job goes on, on another gpu-worker, from
 * the tokens whose text its caller already got (real processes, real Redis, `REGISTRY_TTL_MS`
 * short and `JOB_LOCK_MS` long, so only the registry can find the losses in time). Killed after
 * its first text, a 1,500-token greedy job ends `COMPLETED` with node-llama-cpp's own greedy text,
 * numbered 0..n once, its chunks encrypted on both sides of the cut; killed twice with
 * `MAX_JOB_ATTEMPTS=2`, it fails `WORKER_LOST` at the second loss; the jobs a gpu-worker took from
 * the queue and died before claiming run again within `REGISTRY_TTL_MS`, not `JOB_LOCK_MS` (the
 * test plays that gpu-worker: a registry entry and a BullMQ worker whose lock tokens name it); a
 * continued job whose orchestrator dies too is adopted with the text of both attempts.
 */
import assert from "node:assert/strict";
import type { ChildProcess } from "node:child_process";
import { after, before, describe, it } from "node:test";
import { Worker } from "bullmq";
import { Redis } from "ioredis";
import { isFinalChunk, type StreamChunk } from "../../shared/protocol/index.js";
import { lockTokenPrefix } from "../../shared/registry/job-owner.js";
import { assertOneNumbering } from "../support/chunks.js";
import { metricValue } from "../support/metrics.js";
import { tinyModelPath } from "../support/models.js";
import { referenceTexts } from "../support/reference.js";
import { TestStack, textOf } from "../support/stack.js";
import { waitFor } from "../support/wait-for.js";

const registryTtlMs = 1500;
/** What the tests allow past `REGISTRY_TTL_MS` (a tick, plus a loaded machine). */
const marginMs = 8000;
const greedy = { prompt: "the dog", sampling_params: { max_tokens: 1500, temperature: 0 } };

describe("a job whose gpu-worker is lost goes on elsewhere", () => {
  let stack: TestStack;
  let redis: Redis;
  let reference: string;

  before(async () => {
    const modelPath = await tinyModelPath();
    [reference = ""] = await referenceTexts(modelPath, [{ prompt: "the dog", maxTokens: 1500 }]);
    stack = await TestStack.start({
      models: `tiny=${modelPath}`,
      env: {
        REGISTRY_TTL_MS: String(registryTtlMs),
        JOB_LOCK_MS: "30000",
        MAX_JOB_ATTEMPTS: "2",
        // Each attempt evaluates the prompt cold, as the reference does.
        PROMPT_CACHE: "off",
      },
      label: "continue",
    });
    await stack.addGpuWorker();
    redis = new Redis(stack.redisUrl, { maxRetriesPerRequest: 1 });
  });

  after(async () => {
    redis?.disconnect();
    await stack?.stop();
  });

  /** The live gpu-worker process that claimed `attempt` of a job. */
  function ownerOf(jobId: string, attempt: number): Promise<ChildProcess> {
    return stack.gpuWorkerOwning(redis, jobId, attempt);
  }

  function killProcess(child: ChildProcess): Promise<void> {
    return new Promise((resolve) => {
      child.once("exit", () => resolve());
      child.kill("SIGKILL");
    });
  }

  /** Where the orchestrator said attempt `attempt` of a job continues: its first seq. */
  function continuedFrom(jobId: string, attempt: number): number | undefined {
    const line = stack.logs.find(
      (text) =>
        text.includes("job continues on another gpu-worker") &&
        text.includes(jobId) &&
        text.includes(`attempt=${attempt}`),
    );
    const match = line === undefined ? null : /fromSeq=(\d+)/.exec(line);
    return match === null ? undefined : Number(match[1]);
  }

  /**
   * Streams a job, and kills the gpu-worker running attempt `n` at the first chunk that attempt
   * delivers, for each `n` of `killAttempts`. Resolves with the stream and, for each kill, when
   * it happened and when the next attempt's first chunk arrived.
   */
  async function streamKilling(request: unknown, killAttempts: number[]) {
    const job = await stack.run(request);
    const kills: { attempt: number; at?: number; nextChunkAt?: number }[] = [];
    let killing: Promise<void> = Promise.resolve();
    const streamed = stack.streamAll(job.id, (chunk: StreamChunk) => {
      if (isFinalChunk(chunk)) return;
      // The attempt that sent it: the first, or one that continued from a seq at or below it.
      let attempt = 1;
      for (let next = 2; ; next += 1) {
        const from = continuedFrom(job.id, next);
        if (from === undefined || chunk.seq < from) break;
        attempt = next;
      }
      const previous = kills.find((kill) => kill.attempt === attempt - 1);
      if (previous !== undefined && previous.nextChunkAt === undefined) {
        previous.nextChunkAt = performance.now();
      }
      if (!killAttempts.includes(attempt) || kills.some((kill) => kill.attempt === attempt)) return;
      const kill: { attempt: number; at?: number } = { attempt };
      kills.push(kill);
      killing = killing
        .then(() => ownerOf(job.id, attempt))
        .then((child) => {
          kill.at = performance.now();
          return killProcess(child);
        });
    });
    const result = await stack.explain(streamed);
    await killing;
    return { job, ...result, kills };
  }

  it("kill -9 after the first text: COMPLETED with the greedy text, 0..n once, encrypted", async () => {
    const { job, status, chunks, raw, kills } = await streamKilling(
      { ...greedy, encrypt_output: true },
      [1],
    );
    assert.equal(status, "COMPLETED");
    assertOneNumbering(chunks);
    assert.equal(textOf(chunks), reference, "node-llama-cpp's uninterrupted greedy text");
    for (const chunk of raw) assert.ok("encrypted" in chunk, `chunk ${chunk.seq} is encrypted`);
    const last = chunks.at(-1);
    assert.ok(last !== undefined && isFinalChunk(last));
    assert.equal(last.attempts, 2);
    assert.equal(last.usage.completion_tokens, 1500);
    const [cut] = kills;
    assert.ok(cut?.at !== undefined && cut.nextChunkAt !== undefined);
    const resumedMs = Math.round(cut.nextChunkAt - cut.at);
    process.stdout.write(
      `# next delta ${resumedMs} ms after the kill (REGISTRY_TTL_MS ${registryTtlMs})\n`,
    );
    assert.ok(resumedMs < registryTtlMs + marginMs, `resumed ${resumedMs} ms after the kill`);
    assert.ok(
      stack.logs.some(
        (line) => line.includes("job continues on another gpu-worker") && line.includes(job.id),
      ),
      "the orchestrator says where it continued",
    );
    assert.ok(
      stack.logs.some((line) => line.includes("job continuing") && line.includes(job.id)),
      "the new gpu-worker says it continues",
    );
    assert.equal(
      await metricValue(
        stack.url,
        'llmpool_requests_recovered_total{model="tiny",how="continued"}',
      ),
      1,
    );
  });

  it("with MAX_JOB_ATTEMPTS=2, fails WORKER_LOST at the second loss", async () => {
    await stack.addGpuWorker();
    const { status, error, chunks } = await streamKilling(greedy, [1, 2]);
    assert.equal(status, "FAILED");
    assert.equal((JSON.parse(error ?? "{}") as { code: string }).code, "WORKER_LOST");
    assert.deepEqual(
      chunks.map((chunk) => chunk.seq),
      chunks.map((_, index) => index),
      "what it streamed, numbered once across the cut",
    );
  });

  it("runs again the jobs a gpu-worker took and died before claiming, within REGISTRY_TTL_MS", async () => {
    assert.ok(
      stack.gpuWorkers.every((worker) => worker.exitCode !== null || worker.signalCode !== null),
      "no gpu-worker left from the tests before",
    );
    const serving = await stack.addGpuWorker({ MODEL_SEQUENCES: "1" });
    // The gpu-worker is busy: the next jobs wait on the queue.
    const busy = await stack.run(greedy);
    await waitFor(
      async () => (await redis.get(stack.names.ownerKey(busy.id))) !== null,
      30_000,
      "the busy job's claim",
    );
    const jobs = [
      await stack.run({ prompt: "the sun", sampling_params: { max_tokens: 8 } }),
      await stack.run({ prompt: "a cat", sampling_params: { max_tokens: 8 } }),
    ];
    // A gpu-worker whose last heartbeat was just now takes both jobs (BullMQ's locks name it)
    // and dies before claiming them: its registry entry lapses REGISTRY_TTL_MS later.
    const deadId = "a-gpu-worker-that-died";
    const [seconds = "0", micros = "0"] = await redis.time();
    const now = Number(seconds) * 1000 + Math.floor(Number(micros) / 1000);
    await redis.hset(
      stack.names.modelRegistry("tiny"),
      deadId,
      JSON.stringify({ state: "ready", expiresAt: now + registryTtlMs }),
    );
    const connection = new Redis(stack.redisUrl, { maxRetriesPerRequest: null });
    const taker = new Worker(stack.names.modelQueue("tiny"), undefined, {
      connection,
      prefix: stack.names.bullPrefix,
      autorun: false,
    });
    (taker as { id: string }).id = lockTokenPrefix(deadId);
    try {
      const taken = [
        await taker.getNextJob(`${taker.id}:0`),
        await taker.getNextJob(`${taker.id}:1`),
      ];
      const takenAt = performance.now();
      assert.deepEqual(
        taken.map((job) => job?.id),
        jobs.map((job) => job.id),
        "the dead gpu-worker held both jobs",
      );
      for (const job of jobs) {
        await waitFor(
          () =>
            stack.logs.some((line) => line.includes("job queued again") && line.includes(job.id)),
          registryTtlMs + marginMs,
          "the job queued again",
          20,
        );
      }
      const tookMs = Math.round(performance.now() - takenAt);
      process.stdout.write(
        `# both queued again ${tookMs} ms after they were taken and not claimed (REGISTRY_TTL_MS ${registryTtlMs})\n`,
      );
      for (const job of jobs) {
        const { status, chunks } = await stack.explain(stack.streamAll(job.id));
        assert.equal(status, "COMPLETED");
        assertOneNumbering(chunks);
        assert.ok(
          stack
            .logsOf(serving)
            .some((line) => line.includes("job finished") && line.includes(job.id)),
        );
      }
    } finally {
      await taker.close(true);
      connection.disconnect();
    }
  });

  it("a continued job adopted by the next orchestrator: its text from both attempts, once", async () => {
    await stack.addGpuWorker();
    const job = await stack.run(greedy);
    // Its first reply in Redis, then its gpu-worker killed: attempt 2 continues from it.
    await waitFor(
      async () => (await redis.xlen(stack.names.deltaStream(job.id))) > 0,
      30_000,
      "the job's first reply",
      5,
    );
    await killProcess(await ownerOf(job.id, 1));
    await waitFor(
      () => continuedFrom(job.id, 2) !== undefined,
      registryTtlMs + marginMs,
      "the continuation queued",
      20,
    );
    // The orchestrator dies with it: the next one adopts the job from its record and stream.
    await stack.restartOrchestrator("SIGKILL");
    const { status, chunks } = await stack.explain(stack.streamAll(job.id));
    assert.equal(status, "COMPLETED");
    assertOneNumbering(chunks);
    assert.equal(textOf(chunks), reference);
    const last = chunks.at(-1);
    assert.ok(last !== undefined && isFinalChunk(last));
    assert.equal(last.attempts, 2);
  });
});
