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

/** The orchestrator's V8 heap in use (MB), from its own /metrics (prom-client's default metrics). */
async function heapUsedMb(url: string): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const line = text.split("\n").find((row) => row.startsWith("nodejs_heap_size_used_bytes "));
  return Number(line?.split(" ")[1] ?? 0) / 1024 / 1024;
}

function rssMb(pid: number): number {
  const line = readFileSync(`/proc/${pid}/status`, "utf8")
    .split("\n")
    .find((text) => text.startsWith("VmRSS:"));
  return Math.round(Number(line?.split(/\s+/)[1] ?? 0) / 1024);
}

const stack = await TestStack.start({
  models: `tiny=${await tinyModelPath()}`,
  env: { MODEL_SEQUENCES: "8", LOG_LEVEL: "warn" },
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
  // The heap in use includes garbage until the next collection: its lowest value over each
  // stretch of jobs (scraped every 250 ms) is close to what the orchestrator really holds.
  let lowest = Number.POSITIVE_INFINITY;
  let scraping = true;
  const scraper = (async () => {
    while (scraping) {
      lowest = Math.min(lowest, await heapUsedMb(stack.url));
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
  })();
  const sample = (jobs: number): [number, number, number] => {
    const heap = Math.round(lowest);
    lowest = Number.POSITIVE_INFINITY;
    return [jobs, rssMb(pid), heap];
  };
  const samples: [number, number, number][] = [
    [0, rssMb(pid), Math.round(await heapUsedMb(stack.url))],
  ];
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
        if (done % sampleEvery === 0) samples.push(sample(done));
      }
    }),
  );
  scraping = false;
  await scraper;
  const seconds = (performance.now() - started) / 1000;
  const lines = [
    `${totalJobs} jobs of 16 tokens, ${concurrency} at a time, in ${seconds.toFixed(0)} s; RESULT_RETENTION_MS at its default (30 min), so every result is kept.`,
    "",
    "| jobs done | orchestrator RSS (MB) | lowest V8 heap used since the row before (MB) |",
    "|---|---|---|",
    ...samples.map(([jobs, rss, heap]) => `| ${jobs} | ${rss} | ${heap} |`),
  ];
  process.stdout.write(`${lines.join("\n")}\n`);
} finally {
  closeLeanHttp();
  await stack.stop();
}
