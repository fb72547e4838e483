/**
 * `npm run bench -- soak [--minutes=3] [--clients=6] [--retention-ms=…] [--cancel=0.15]`: memory
 * under a long, mixed load, for leaks. The stack runs as separate processes (as `npm start` runs
 * them: orchestrator, gpu-worker, the benchmarks' private redis-server) on stories260K from
 * `../shared/models` (the generated tiny model where that is absent), `MODEL_SEQUENCES=4`,
 * `LLAMA_THREADS=1`. Each client sends, back to back: 4/16/64/256-token completions at temperature
 * 0.8, chats, structured output (a JSON schema), and follow-ups that extend its previous prompt by
 * the text it got (the prompt cache); a share of the jobs (`--cancel`) is cancelled right after
 * submission.
 *
 * Every 10 s it samples each process's RSS (/proc), the orchestrator's and the gpu-worker's V8
 * heaps (their `/metrics`), each model thread's heap and prompt cache (the threads' own reports,
 * `llmpool_model_thread_*`), the jobs each part holds state for (`llmpool_jobs_held`,
 * `llmpool_worker_jobs_held`) and Redis's memory and key count. It prints a table (one row a
 * minute), the growth per minute of each series after the first (warm-up) minute (least squares),
 * and writes the samples (JSON) and a chart (SVG) to `bench/results/`.
 *
 * Redis's keys plateau at what the retentions imply: `--retention-ms` sets `RESULT_RETENTION_MS`
 * (the orchestrator's job records; default 30 min, longer than a short soak), and the queues keep
 * `DASHBOARD_RETENTION` finished jobs (set to `count=1000` here).
 */
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { Redis } from "ioredis";
import { longPollStream } from "../../client/index.js";
import { createSeededRandom } from "../../gpu-worker/models/gguf/seeded-random.js";
import { freePort } from "../../shared/redis/index.js";
import { sharedModelPath, tinyModelPath } from "../support/models.js";
import { personSchema } from "../support/person-schema.js";
import { TestStack } from "../support/stack.js";
import { benchOption, print } from "./bench-stats.js";
import { closeLeanHttp, requestJson } from "./lean-http.js";
import { lineChartSvg } from "./svg-chart.js";

const minutes = benchOption("minutes", 3);
const clients = benchOption("clients", 6);
const cancelShare = benchOption("cancel", 0.15);
const retentionMs = benchOption("retention-ms", 1_800_000);
const sampleEveryMs = 10_000;
const warmUpMs = 60_000;

const model = (await sharedModelPath("stories260K.gguf")) ?? (await tinyModelPath());
const metricsPort = await freePort();
const stack = await TestStack.start({
  models: `soak=${model}`,
  env: {
    MODEL_SEQUENCES: "4",
    LLAMA_THREADS: "1",
    LOG_LEVEL: "warn",
    RESULT_RETENTION_MS: String(retentionMs),
    DASHBOARD_RETENTION: "count=1000",
  },
  gpuWorkerEnv: { METRICS_PORT: String(metricsPort) },
  label: "soak",
});
const redis = new Redis(stack.redisUrl);
const redisPid = Number(/process_id:(\d+)/.exec(await redis.info("server"))?.[1] ?? 0);

/** One sample of every series, in MB unless named otherwise. */
interface Sample {
  seconds: number;
  completed: number;
  cancelled: number;
  failed: number;
  orchestratorRss: number;
  gpuWorkerRss: number;
  redisRss: number;
  orchestratorHeap: number;
  gpuWorkerHeap: number;
  threadHeap: number;
  threadTokensHeld: number;
  redisUsedMemory: number;
  redisKeys: number;
  orchestratorJobsHeld: number;
  gpuWorkerJobsHeld: number;
}

const mb = (bytes: number) => bytes / 1024 / 1024;

function rssMb(pid: number | undefined): number {
  if (pid === undefined || pid === 0) return Number.NaN;
  try {
    const line = readFileSync(`/proc/${pid}/status`, "utf8").match(/VmRSS:\s+(\d+)/);
    return Number(line?.[1] ?? Number.NaN) / 1024;
  } catch {
    return Number.NaN;
  }
}

/** Sum of a metric's samples (`name` or `name{…}`) in a Prometheus text. */
function metricSum(text: string, name: string): number {
  let sum = 0;
  for (const line of text.split("\n")) {
    if (line.startsWith(`${name} `) || line.startsWith(`${name}{`)) {
      sum += Number(line.slice(line.lastIndexOf(" ") + 1));
    }
  }
  return sum;
}

async function metricsText(url: string): Promise<string> {
  return (await fetch(`${url}/metrics`)).text();
}

async function redisKeys(): Promise<number> {
  let count = 0;
  let cursor = "0";
  do {
    const [next, keys] = await redis.scan(cursor, "MATCH", `${stack.prefix}*`, "COUNT", 1000);
    cursor = next;
    count += keys.length;
  } while (cursor !== "0");
  return count;
}

const ends = { completed: 0, cancelled: 0, failed: 0 };
const started = performance.now();

async function sample(): Promise<Sample> {
  const [orchestrator, gpuWorker, memory] = await Promise.all([
    metricsText(stack.url),
    metricsText(`http://127.0.0.1:${metricsPort}`),
    redis.info("memory"),
  ]);
  return {
    seconds: (performance.now() - started) / 1000,
    ...ends,
    orchestratorRss: rssMb(stack.orchestrator?.pid),
    gpuWorkerRss: rssMb(stack.gpuWorkers[0]?.pid),
    redisRss: rssMb(redisPid),
    orchestratorHeap: mb(metricSum(orchestrator, "nodejs_heap_size_used_bytes")),
    gpuWorkerHeap: mb(metricSum(gpuWorker, "nodejs_heap_size_used_bytes")),
    threadHeap: mb(metricSum(gpuWorker, "llmpool_model_thread_heap_used_bytes")),
    threadTokensHeld: metricSum(gpuWorker, "llmpool_model_thread_tokens_held"),
    redisUsedMemory: mb(Number(/used_memory:(\d+)/.exec(memory)?.[1] ?? Number.NaN)),
    redisKeys: await redisKeys(),
    orchestratorJobsHeld: metricSum(orchestrator, "llmpool_jobs_held"),
    gpuWorkerJobsHeld: metricSum(gpuWorker, "llmpool_worker_jobs_held"),
  };
}

interface StreamPage {
  status: string;
  stream: { output: { delta?: string } }[];
}

/** Sends one job and follows it to its end; returns its text. */
async function runJob(request: object, cancel: boolean): Promise<string> {
  const job = (await requestJson(`${stack.url}/run`, {
    input: { encrypted_input: stack.encrypt(request) },
  })) as { id?: string; status: string };
  if (job.id === undefined) {
    ends.failed += 1;
    return "";
  }
  if (cancel) await requestJson(`${stack.url}/cancel/${job.id}`, {});
  let text = "";
  const poll = async () =>
    (await requestJson(`${stack.url}/stream/${job.id}?wait=10000`)) as StreamPage;
  for await (const page of longPollStream(poll)) {
    for (const { output } of page.stream ?? []) text += output.delta ?? "";
    if (page.status === "COMPLETED") ends.completed += 1;
    else if (page.status === "CANCELLED") ends.cancelled += 1;
    else if (page.status === "FAILED" || page.status === "TIMED_OUT") ends.failed += 1;
    else continue;
    return text;
  }
  return text;
}

let stopping = false;

async function client(index: number): Promise<void> {
  const random = createSeededRandom(1000 + index);
  let story = "";
  let turn = 0;
  while (!stopping) {
    const pick = random.next();
    const cancel = random.next() < cancelShare;
    const sampling = { temperature: 0.8, max_tokens: [4, 16, 64, 256][turn % 4] ?? 16 };
    turn += 1;
    if (pick < 0.1) {
      await runJob(
        {
          prompt: "A person:",
          sampling_params: { ...sampling, max_tokens: 64, json_schema: personSchema },
        },
        cancel,
      );
    } else if (pick < 0.25) {
      await runJob(
        {
          messages: [
            { role: "system", content: "You tell short stories." },
            { role: "user", content: `Tell me story number ${turn}.` },
          ],
          sampling_params: sampling,
        },
        cancel,
      );
    } else if (pick < 0.45) {
      // A follow-up: the previous prompt and its text, continued (the prompt cache's case).
      if (story.length === 0 || story.length > 1200) story = `Once upon a time, client ${index}`;
      const prompt = `${story} Then`;
      story =
        prompt +
        (await runJob({ prompt, sampling_params: { ...sampling, max_tokens: 32 } }, cancel));
    } else {
      await runJob({ prompt: `The little ${turn} went`, sampling_params: sampling }, cancel);
    }
  }
}

const samples: Sample[] = [await sample()];
const sampler = setInterval(() => {
  sample().then(
    (next) => samples.push(next),
    (error: Error) => process.stderr.write(`soak: a sample failed: ${error.message}\n`),
  );
}, sampleEveryMs);
const load = Array.from({ length: clients }, (_, index) => client(index));
await new Promise((resolve) => setTimeout(resolve, minutes * 60_000));
stopping = true;
await Promise.all(load);
clearInterval(sampler);
// Idle: every part should be back to holding no job.
await new Promise((resolve) => setTimeout(resolve, 6000));
const idle = await sample();
samples.push(idle);

try {
  report(samples, idle);
} finally {
  redis.disconnect();
  closeLeanHttp();
  await stack.stop();
}

/** Least-squares slope of `read` over the samples from `fromSeconds` on, per minute. */
function growthPerMinute(
  rows: readonly Sample[],
  read: (sample: Sample) => number,
  fromSeconds: number,
): number {
  const points = rows
    .filter((row) => row.seconds >= fromSeconds)
    .map((row) => [row.seconds / 60, read(row)] as const)
    .filter(([, value]) => Number.isFinite(value));
  if (points.length < 2) return Number.NaN;
  const meanX = points.reduce((sum, [x]) => sum + x, 0) / points.length;
  const meanY = points.reduce((sum, [, y]) => sum + y, 0) / points.length;
  const covariance = points.reduce((sum, [x, y]) => sum + (x - meanX) * (y - meanY), 0);
  const variance = points.reduce((sum, [x]) => sum + (x - meanX) ** 2, 0);
  return covariance / variance;
}

function report(rows: readonly Sample[], last: Sample): void {
  const f = (value: number, digits = 1) => (Number.isFinite(value) ? value.toFixed(digits) : "–");
  const perMinute = rows.filter(
    (row, index) =>
      index === 0 ||
      Math.floor(row.seconds / 60) > Math.floor((rows[index - 1]?.seconds ?? 0) / 60),
  );
  const table = [...new Set([...perMinute, rows[rows.length - 2] ?? last, last])];
  const jobs = last.completed + last.cancelled + last.failed;
  print([
    `${clients} clients for ${minutes} min on ${path.basename(model)} (MODEL_SEQUENCES=4, LLAMA_THREADS=1), ${Math.round(cancelShare * 100)} % cancelled at submission, RESULT_RETENTION_MS=${retentionMs}: ${last.completed} completed, ${last.cancelled} cancelled, ${last.failed} failed (${f((jobs / (last.seconds - 6)) * 60, 0)} jobs/min). The last row is after 6 s idle. MB unless named.`,
    "",
    "| s | jobs | orch. RSS | gpu-w. RSS | redis RSS | orch. heap | gpu-w. heap | threads' heap | tokens held | redis used | redis keys | jobs held (orch./gpu-w.) |",
    "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ...table.map(
      (row) =>
        `| ${f(row.seconds, 0)} | ${row.completed + row.cancelled + row.failed} | ${f(row.orchestratorRss)} | ${f(row.gpuWorkerRss)} | ${f(row.redisRss)} | ${f(row.orchestratorHeap)} | ${f(row.gpuWorkerHeap)} | ${f(row.threadHeap)} | ${row.threadTokensHeld} | ${f(row.redisUsedMemory)} | ${row.redisKeys} | ${row.orchestratorJobsHeld}/${row.gpuWorkerJobsHeld} |`,
    ),
    "",
    "Growth per minute (least squares), after the first (warm-up) minute and over the last half of the run; goal: under 1 MB a minute per process:",
    "",
    "| series | after the first minute | over the last half | unit |",
    "|---|---|---|---|",
    ...growthRows(rows).map(
      ([name, afterWarmUp, lastHalf, unit]) =>
        `| ${name} | ${f(afterWarmUp, 2)} | ${f(lastHalf, 2)} | ${unit} a minute |`,
    ),
  ]);
  const resultsDir = fileURLToPath(new URL("../../../bench/results/", import.meta.url));
  mkdirSync(resultsDir, { recursive: true });
  const stamp = new Date().toISOString().replace(/[:.]/g, "-");
  const base = path.join(resultsDir, `soak-${stamp}`);
  writeFileSync(
    `${base}.json`,
    `${JSON.stringify({ minutes, clients, cancelShare, retentionMs, model: path.basename(model), samples: rows }, null, 2)}\n`,
  );
  const series = (name: string, read: (row: Sample) => number) => ({
    name,
    points: rows
      .map((row) => [row.seconds / 60, read(row)] as const)
      .filter(([, y]) => Number.isFinite(y)),
  });
  writeFileSync(
    `${base}.svg`,
    lineChartSvg({
      title: `Soak: ${clients} clients, ${minutes} min, ${jobs} jobs`,
      xLabel: "minutes",
      yLabel: "MB",
      series: [
        series("gpu-worker RSS", (row) => row.gpuWorkerRss),
        series("orchestrator RSS", (row) => row.orchestratorRss),
        series("redis-server RSS", (row) => row.redisRss),
        series("gpu-worker heap", (row) => row.gpuWorkerHeap),
        series("orchestrator heap", (row) => row.orchestratorHeap),
        series("model threads' heap", (row) => row.threadHeap),
        series("redis used memory", (row) => row.redisUsedMemory),
      ],
    }),
  );
  print([
    "",
    `Samples: ${path.relative(process.cwd(), base)}.json; chart: ${path.relative(process.cwd(), base)}.svg`,
  ]);
}

function growthRows(rows: readonly Sample[]): [string, number, number, string][] {
  const series: [string, (row: Sample) => number, string][] = [
    ["orchestrator RSS", (row) => row.orchestratorRss, "MB"],
    ["gpu-worker RSS", (row) => row.gpuWorkerRss, "MB"],
    ["redis-server RSS", (row) => row.redisRss, "MB"],
    ["orchestrator V8 heap", (row) => row.orchestratorHeap, "MB"],
    ["gpu-worker V8 heap", (row) => row.gpuWorkerHeap, "MB"],
    ["model threads' V8 heap", (row) => row.threadHeap, "MB"],
    ["redis used memory", (row) => row.redisUsedMemory, "MB"],
    ["redis keys", (row) => row.redisKeys, "keys"],
  ];
  const halfway = (rows.at(-1)?.seconds ?? 0) / 2;
  return series.map(([name, read, unit]) => [
    name,
    growthPerMinute(rows, read, warmUpMs / 1000),
    growthPerMinute(rows, read, halfway),
    unit,
  ]);
}
