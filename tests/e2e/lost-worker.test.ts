/**
 * A gpu-worker that dies or stalls is noticed from its registry heartbeat, within
 * `REGISTRY_TTL_MS` and a tick, not only by BullMQ's lock check (`JOB_LOCK_MS` is long here in
 * the kill tests, so only the heartbeat can find it in time). A job that had streamed and cannot be
 * continued (logprobs) fails `WORKER_LOST`; one that had streamed goes on, on another gpu-worker,
 * from the text delivered (`continuation.test.ts` has more of that); one that had streamed
 * nothing runs once more on another gpu-worker and its caller sees one numbering, 0..n, and the
 * model's text. A paused gpu-worker that resumes writes nothing more for the jobs it lost, and no
 * key of ours is ever left without an expiry.
 */
import assert from "node:assert/strict";
import type { ChildProcess } from "node:child_process";
import { after, before, describe, it } from "node:test";
import { Redis } from "ioredis";
import { RedisNames } from "../../shared/naming.js";
import { decodeEnvelope } from "../../shared/protocol/index.js";
import { endedOwner, parseOwner } from "../../shared/registry/job-owner.js";
import { assertOneNumbering } from "../support/chunks.js";
import { metricValue } from "../support/metrics.js";
import { tinyModelPath } from "../support/models.js";
import { queueKey } from "../support/redis.js";
import { TestStack, textOf } from "../support/stack.js";
import { waitFor } from "../support/wait-for.js";

const registryTtlMs = 1500;
/** What the tests allow past `REGISTRY_TTL_MS` (a tick, plus a loaded CI machine). */
const marginMs = 8000;
/** About 1,900 tokens: its evaluation (≈0.8 s here) outlasts the 2 ms poll for the claim. */
const longPrompt = "Once upon a time there was a little dog. ".repeat(190);
/** About 1,500 tokens, leaving room for a longer reply. */
const mediumPrompt = "Once upon a time there was a little dog. ".repeat(150);

interface ErrorInfo {
  code: string;
  message: string;
}

/** The gpu-worker process whose registry id is `workerId` (it logs it when it starts). */
function processOf(stack: TestStack, workerId: string): ChildProcess {
  const child = stack.gpuWorkers.find((worker) =>
    stack
      .logsOf(worker)
      .some((line) => line.includes("gpu-worker starting") && line.includes(workerId)),
  );
  assert.ok(child, `the gpu-worker ${workerId} is one of the stack's`);
  return child;
}

describe("a gpu-worker killed mid-job", () => {
  let stack: TestStack;
  let redis: Redis;
  let names: RedisNames;
  let modelPath: string;

  before(async () => {
    modelPath = await tinyModelPath();
    stack = await TestStack.start({
      models: `tiny=${modelPath}`,
      // The lock check would take 30 s: only the registry heartbeat can find the loss in time.
      // No prompt cache: a control run of the same prompt is evaluated cold, like the first.
      env: { REGISTRY_TTL_MS: String(registryTtlMs), JOB_LOCK_MS: "30000", PROMPT_CACHE: "off" },
      label: "lost",
    });
    redis = new Redis(stack.redisUrl, { maxRetriesPerRequest: 1 });
    names = new RedisNames(stack.prefix);
  });

  after(async () => {
    redis?.disconnect();
    await stack?.stop();
  });

  it("fails a job that streamed and cannot be continued WORKER_LOST within REGISTRY_TTL_MS", async () => {
    // Logprobs run on the token loop, whose deltas carry no token ids: not continued.
    const { job, streamed, killedAt } = await stack.killGpuWorkersAtFirstDelta({
      prompt: "the dog",
      sampling_params: { max_tokens: 4000, temperature: 0, logprobs: 0 },
    });
    const { status, error, chunks } = await stack.explain(streamed);
    const tookMs = Math.round(performance.now() - killedAt);
    process.stdout.write(
      `# WORKER_LOST ${tookMs} ms after the kill (REGISTRY_TTL_MS ${registryTtlMs})\n`,
    );
    assert.equal(status, "FAILED");
    const info = JSON.parse(error ?? "{}") as ErrorInfo;
    assert.equal(info.code, "WORKER_LOST");
    assert.match(info.message, /stopped before it finished/);
    assert.ok(chunks.length > 0, "it had streamed");
    assert.ok(tookMs < registryTtlMs + marginMs, `found ${tookMs} ms after the kill`);
    // Ended: its stream is gone, its owner key says it ended (and expires).
    await waitFor(
      async () =>
        (await redis.exists(names.deltaStream(job.id))) === 0 &&
        (await redis.get(names.ownerKey(job.id))) === endedOwner,
      5000,
      "the job's stream deleted and its owner key marked ended",
    );
    assert.ok((await redis.pttl(names.ownerKey(job.id))) > 0, "the ended mark expires");
  });

  it("runs a job that streamed nothing once more on another gpu-worker: 0..n once", async () => {
    const first = await stack.addGpuWorker();
    const job = await stack.run({
      prompt: longPrompt,
      sampling_params: { max_tokens: 24, temperature: 0 },
    });
    // Stopped the moment it claims the job, while it still evaluates the prompt.
    await waitFor(
      async () => (await redis.get(names.ownerKey(job.id))) !== null,
      30_000,
      "the gpu-worker's claim",
    );
    first.kill("SIGSTOP");
    const owner = parseOwner(await redis.get(names.ownerKey(job.id)));
    assert.equal(owner?.attempt, 1);
    assert.equal(
      await redis.xlen(names.deltaStream(job.id)),
      0,
      "stopped before its first reply (the prompt's evaluation outlasted the poll)",
    );
    await new Promise<void>((resolve) => {
      first.once("exit", () => resolve());
      first.kill("SIGKILL");
    });
    const second = await stack.addGpuWorker();
    const { status, chunks } = await stack.explain(stack.streamAll(job.id));
    assert.equal(status, "COMPLETED");
    assertOneNumbering(chunks);
    // The same job run undisturbed (cold: no prompt cache here) gives the same text.
    const control = await stack.runsync({
      prompt: longPrompt,
      sampling_params: { max_tokens: 24, temperature: 0 },
    });
    assert.equal(control.status, "COMPLETED");
    assert.equal(textOf(chunks), textOf(control.output ?? []));
    assert.ok(
      stack.logsOf(second).some((line) => line.includes("job finished") && line.includes(job.id)),
      "it ran on the second gpu-worker",
    );
    assert.ok(
      stack.logs.some((line) => line.includes("job queued again") && line.includes(job.id)),
      "the orchestrator queued it again",
    );
    assert.equal(
      await metricValue(stack.url, 'llmpool_requests_recovered_total{model="tiny",how="requeued"}'),
      1,
      "counted once in the orchestrator's metrics",
    );
  });
});

describe("a gpu-worker paused past its registry entry and its locks", () => {
  let stack: TestStack;
  let redis: Redis;
  let spy: Redis;
  let names: RedisNames;
  /** Replies (and started notices) seen on any orchestrator channel. */
  const heard: { jobId: string; attempt: number; at: number }[] = [];

  before(async () => {
    stack = await TestStack.start({
      // A thread per job: the continued text is compared with an uninterrupted run's, which holds
      // only for a job decoded alone (two jobs on one context share batches, and llama.cpp's
      // results depend on the batch's shape).
      models: `tiny=${await tinyModelPath()}?threads=2&sequences=1`,
      env: { REGISTRY_TTL_MS: String(registryTtlMs), JOB_LOCK_MS: "1500", PROMPT_CACHE: "off" },
      label: "paused",
    });
    redis = new Redis(stack.redisUrl, { maxRetriesPerRequest: 1 });
    names = new RedisNames(stack.prefix);
    spy = new Redis(stack.redisUrl, { maxRetriesPerRequest: 1 });
    spy.on("pmessage", (_pattern: string, _channel: string, text: string) => {
      const envelope = decodeEnvelope(text);
      if (envelope === undefined) return;
      heard.push({ jobId: envelope.j, attempt: envelope.a ?? 1, at: performance.now() });
    });
    await spy.psubscribe(names.replyChannel("*"));
  });

  after(async () => {
    spy?.disconnect();
    redis?.disconnect();
    // A gpu-worker left stopped would never exit.
    for (const child of stack?.gpuWorkers ?? []) child.kill("SIGCONT");
    await stack?.stop();
  });

  it("continues or re-runs its jobs; resumed, it writes nothing more for them; every key expires", async () => {
    const [paused] = stack.gpuWorkers as [ChildProcess];
    // One job streams; the other is claimed and still evaluating its prompt at the pause.
    const streaming = await stack.run({
      prompt: "the dog",
      sampling_params: { max_tokens: 4000, temperature: 0 },
    });
    let firstChunk = false;
    const streamingEnd = stack.streamAll(streaming.id, () => {
      firstChunk = true;
    });
    await waitFor(() => firstChunk, 30_000, "the first job's first chunk");
    const silent = await stack.run({
      prompt: mediumPrompt,
      sampling_params: { max_tokens: 200, temperature: 0 },
    });
    await waitFor(
      async () => (await redis.get(names.ownerKey(silent.id))) !== null,
      30_000,
      "the second job's claim",
    );
    paused.kill("SIGSTOP");
    const pausedAt = performance.now();
    assert.equal(
      await redis.xlen(names.deltaStream(silent.id)),
      0,
      "paused before the second job's first reply (its prompt's evaluation outlasted the poll)",
    );
    const owner = parseOwner(await redis.get(names.ownerKey(streaming.id)));
    assert.ok(owner !== undefined && owner.workerId !== "");
    assert.equal(processOf(stack, owner.workerId), paused);

    // The streaming job is queued to go on from its text: found within REGISTRY_TTL_MS.
    await waitFor(
      () =>
        stack.logs.some(
          (line) =>
            line.includes("job continues on another gpu-worker") && line.includes(streaming.id),
        ),
      registryTtlMs + marginMs,
      "the streaming job queued as a continuation",
      20,
    );
    const tookMs = Math.round(performance.now() - pausedAt);
    process.stdout.write(`# continuation queued ${tookMs} ms after SIGSTOP\n`);

    // Both jobs wait for a gpu-worker, queued again as attempt 2.
    await stack.addGpuWorker();
    const silentEnd = stack.streamAll(silent.id);
    // The lost attempts' entries, active under the paused gpu-worker's lock, are removed by the
    // orchestrator once the jobs go on (not left for BullMQ's stalled check, JOB_LOCK_MS and more).
    for (const job of [silent, streaming]) {
      await waitFor(
        async () => (await redis.exists(names.queueJob("tiny", job.id))) === 0,
        10_000,
        "the lost attempt's entry removed",
      );
      assert.equal(await redis.zscore(queueKey(names, "tiny", "failed"), job.id), null);
    }
    const { status: silentStatus, chunks } = await stack.explain(silentEnd);
    assert.equal(silentStatus, "COMPLETED");
    assertOneNumbering(chunks);
    const continued = await stack.explain(streamingEnd);
    assert.equal(continued.status, "COMPLETED");
    assertOneNumbering(continued.chunks);
    const control = await stack.runsync({
      prompt: "the dog",
      sampling_params: { max_tokens: 4000, temperature: 0 },
    });
    assert.equal(textOf(continued.chunks), textOf(control.output ?? []), "the uninterrupted text");
    assert.ok(
      heard.some(({ jobId, attempt }) => jobId === silent.id && attempt === 2),
      "its replies came from attempt 2",
    );

    const resumedAt = performance.now();
    paused.kill("SIGCONT");
    for (const job of [streaming, silent]) {
      await waitFor(
        () =>
          stack
            .logsOf(paused)
            .some((line) => line.includes("job lost: stopped") && line.includes(job.id)),
        30_000,
        "the resumed gpu-worker to stop the job it lost",
      );
      assert.deepEqual(
        heard.filter(
          ({ jobId, attempt, at }) => jobId === job.id && attempt === 1 && at > resumedAt,
        ),
        [],
        "no reply of a lost attempt after the resume",
      );
      assert.equal(await redis.exists(names.deltaStream(job.id)), 0, "no stream re-created");
    }

    const said = stack.logsOf(paused).filter((line) => /lost|lock/.test(line));
    process.stdout.write(
      `# the resumed gpu-worker said:\n${said.map((l) => `#   ${l}`).join("\n")}\n`,
    );

    // Both gpu-workers serve on.
    const next = await stack.runsync({
      prompt: "the sun",
      sampling_params: { max_tokens: 8, temperature: 0 },
    });
    assert.equal(next.status, "COMPLETED");

    // BullMQ's own queue keys (`<prefix>:model-<name>:*`: its job hashes, lists, events stream,
    // id counter) live as long as the queue by design: they are exempt. Every other key expires.
    const lasting: string[] = [];
    let cursor = "0";
    do {
      const [nextCursor, keys] = await redis.scan(cursor, "MATCH", `${stack.prefix}:*`);
      cursor = nextCursor;
      for (const key of keys) {
        if (key.startsWith(queueKey(names, "tiny", ""))) continue;
        if ((await redis.pttl(key)) === -1) lasting.push(key);
      }
    } while (cursor !== "0");
    assert.deepEqual(lasting, [], "keys without an expiry");
  });
});
