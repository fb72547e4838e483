/**
 * `npm run bench -- orchestrator-memory`: the orchestrator's resident memory over a long run of
 * short jobs. Results older than the latest 1,000 are read back from Redis, so its memory should
 * level off instead of growing with every job kept for `RESULT_RETENTION_MS`.
 *
 *   BENCH_JOBS=6000 npm run bench -- orchestrator-memory
 */
import { readFileSync } from "node:fs";
import { tinyModelPath } from "../support/models.js";
import { TestStack } from "../support/stack.js";
import { closeLeanHttp, requestJson } from "./lean-http.js";

const totalJobs = Number(process.env.BENCH_JOBS ?? 6000);
const concurrency = 32;
const sampleEvery = Math.max(1, Math.round(totalJobs / 6));

/**
 * The orchestrator's live heap after its latest full collection (MB), from V8's `--trace-gc`
 * lines ("Mark-Compact 61.2 (70.0) -> 33.4 (68.0) MB"): what it holds, garbage left out.
 */
function liveHeapMb(logs: readonly string[]): number {
  for (let i = logs.length - 1; i >= 0; i -= 1) {
    const match = /Mark-Compact[^>]*-> ([\d.]+) \(/.exec(logs[i] ?? "");
    if (match) return Math.round(Number(match[1]));
  }
  return Number.NaN;
}

function rssMb(pid: number): number {
  const line = readFileSync(`/proc/${pid}/status`, "utf8")
    .split("\n")
    .find((text) => text.startsWith("VmRSS:"));
  return Math.round(Number(line?.split(/\s+/)[1] ?? 0) / 1024);
}

const stack = await TestStack.start({
  models: `tiny=${await tinyModelPath()}`,
  env: { MODEL_SEQUENCES: "8", LOG_LEVEL: "warn", NODE_OPTIONS: "--trace-gc" },
  gpuWorkerEnv: { NODE_OPTIONS: "" },
  label: "bench-memory",
});
try {
  const pid = stack.orchestrator?.pid ?? 0;
  const body = () => ({
    input: {
      encrypted_input: stack.encrypt({
        prompt: "the dog",
        sampling_params: { max_tokens: 16, temperature: 0 },
      }),
    },
  });
  const logs = () => stack.logsOf(stack.orchestrator as NonNullable<typeof stack.orchestrator>);
  const samples: [number, number, number][] = [[0, rssMb(pid), liveHeapMb(logs())]];
  let sent = 0;
  let done = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (sent < totalJobs) {
        sent += 1;
        const view = (await requestJson(`${stack.url}/runsync`, body())) as { status: string };
        if (view.status !== "COMPLETED") throw new Error(`a job ended ${view.status}`);
        done += 1;
        if (done % sampleEvery === 0) samples.push([done, rssMb(pid), liveHeapMb(logs())]);
      }
    }),
  );
  const seconds = (performance.now() - started) / 1000;
  const lines = [
    `${totalJobs} jobs of 16 tokens, ${concurrency} at a time, in ${seconds.toFixed(0)} s; RESULT_RETENTION_MS at its default (30 min), so every result is kept.`,
    "",
    "| jobs done | orchestrator RSS (MB) | live heap after the last full GC (MB) |",
    "|---|---|---|",
    ...samples.map(([jobs, rss, heap]) => `| ${jobs} | ${rss} | ${heap} |`),
  ];
  process.stdout.write(`${lines.join("\n")}\n`);
} finally {
  closeLeanHttp();
  await stack.stop();
}
