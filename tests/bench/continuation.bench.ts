/**
 * `npm run bench -- continuation`: how long a caller's stream stops when the gpu-worker running
 * its job dies. Two gpu-workers on the tiny model; a 1,500-token greedy job is streamed and the
 * gpu-worker that runs it is killed (SIGKILL) at an early cut (its first delta) and at a late one
 * (once ~1,200 tokens' text was streamed); times from the kill to the next delta the caller gets
 * (the continuation's first), `BENCH_RUNS` times each (default 3). The goal: `REGISTRY_TTL_MS`
 * (1,500 ms here) + the prompt's re-evaluation + 100 ms; the late cut also replays its delivered
 * tokens, one decode step each. A new gpu-worker replaces each one killed.
 *
 *   BENCH_RUNS=5 npm run bench -- continuation
 */
import type { ChildProcess } from "node:child_process";
import { Redis } from "ioredis";
import { isFinalChunk, type StreamChunk } from "../../shared/protocol/index.js";
import { parseOwner } from "../../shared/registry/job-owner.js";
import { tinyModelPath } from "../support/models.js";
import { TestStack, textOf } from "../support/stack.js";
import { waitFor } from "../support/wait-for.js";
import { benchRuns, print, row, tableHead } from "./bench-stats.js";

const runs = benchRuns(3);
const registryTtlMs = 1500;
const maxTokens = 1500;
/** The late cut: once this share of the uninterrupted text was streamed. */
const lateShare = 0.8;

const stack = await TestStack.start({
  models: `tiny=${await tinyModelPath()}`,
  env: { REGISTRY_TTL_MS: String(registryTtlMs), JOB_LOCK_MS: "30000", LOG_LEVEL: "info" },
  label: "bench-continue",
});
const redis = new Redis(stack.redisUrl, { maxRetriesPerRequest: 1 });

async function ownerProcess(jobId: string): Promise<ChildProcess> {
  let workerId = "";
  await waitFor(
    async () => {
      workerId = parseOwner(await redis.get(stack.names.ownerKey(jobId)))?.workerId ?? "";
      return workerId !== "";
    },
    30_000,
    "the job's claim",
    5,
  );
  const child = stack.gpuWorkers.find(
    (worker) =>
      worker.exitCode === null &&
      worker.signalCode === null &&
      stack
        .logsOf(worker)
        .some((line) => line.includes("gpu-worker starting") && line.includes(workerId)),
  );
  if (child === undefined) throw new Error(`no process for gpu-worker ${workerId}`);
  return child;
}

/** Runs one job, kills its gpu-worker once `cutAt(text so far)` says so; the resume measures. */
async function cutOnce(cutAt: (streamed: number) => boolean) {
  const job = await stack.run({
    prompt: "the dog",
    sampling_params: { max_tokens: maxTokens, temperature: 0 },
  });
  let streamed = 0;
  let killedAt: number | undefined;
  let killing: Promise<void> | undefined;
  let resumedAt: number | undefined;
  // Chunks the killed attempt sent before the kill may reach the caller after it: the resume is
  // the continuation's first chunk (the seq the orchestrator logs it continues from).
  const continuedFrom = () => {
    const line = stack.logs.find(
      (text) => text.includes("job continues on another gpu-worker") && text.includes(job.id),
    );
    return line === undefined ? undefined : Number(/fromSeq=(\d+)/.exec(line)?.[1]);
  };
  const done = stack.streamAll(job.id, (chunk: StreamChunk) => {
    if (isFinalChunk(chunk)) return;
    if (killedAt !== undefined) {
      const from = continuedFrom();
      if (resumedAt === undefined && from !== undefined && chunk.seq >= from) {
        resumedAt = performance.now();
      }
      return;
    }
    streamed += chunk.delta.length;
    if (killing !== undefined || !cutAt(streamed)) return;
    killing = ownerProcess(job.id).then(
      (child) =>
        new Promise<void>((resolve) => {
          killedAt = performance.now();
          child.once("exit", () => resolve());
          child.kill("SIGKILL");
        }),
    );
  });
  const { status, chunks } = await done;
  await killing;
  if (status !== "COMPLETED") throw new Error(`the job ended ${status}`);
  const line = stack.logs.find(
    (text) => text.includes("job continues on another gpu-worker") && text.includes(job.id),
  );
  const delivered = Number(/deliveredTokens=(\d+)/.exec(line ?? "")?.[1] ?? Number.NaN);
  if (killedAt === undefined || resumedAt === undefined) {
    throw new Error("the continuation's first chunk was not seen");
  }
  await stack.addGpuWorker();
  return { resumeMs: resumedAt - killedAt, delivered, text: textOf(chunks) };
}

await stack.addGpuWorker();
const whole = await stack.runsync({
  prompt: "the dog",
  sampling_params: { max_tokens: maxTokens, temperature: 0 },
});
const wholeText = textOf(whole.output ?? []);
const results: string[] = [];
for (const [name, cutAt] of [
  ["early cut (first delta)", () => true],
  [`late cut (${lateShare * 100}% of the text)`, (n: number) => n >= wholeText.length * lateShare],
] as const) {
  const resume: number[] = [];
  const delivered: number[] = [];
  for (let run = 0; run < runs; run += 1) {
    const result = await cutOnce(cutAt);
    if (result.text !== wholeText) throw new Error("a continued text differs from the whole one");
    resume.push(result.resumeMs);
    delivered.push(result.delivered);
  }
  results.push(row(`${name}: kill → next delta`, resume, "ms", 0));
  results.push(row(`${name}: tokens delivered before the cut`, delivered, "tokens", 0));
}
print([
  `Tiny model, ${maxTokens}-token greedy job, two gpu-workers, REGISTRY_TTL_MS=${registryTtlMs}, ${runs} runs per cut; every continued text equals the uninterrupted one.`,
  "",
  ...tableHead,
  ...results,
]);
redis.disconnect();
await stack.stop();
