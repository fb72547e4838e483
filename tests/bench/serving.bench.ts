/**
 * `npm run bench -- serving`: the serving core against raw node-llama-cpp, in one run, on the same
 * model and prompts, greedy:
 *   (a) 1 request at a time: time to first token and tokens/s (p50, p99 over ≥ 50 requests);
 *   (b) 8 concurrent: aggregate tokens/s, raw with 8 sequences on one context vs the stack with
 *       MODEL_SEQUENCES=8;
 *   (c) a short job next to two long ones, vs the same job alone (through the stack);
 *   (d) a follow-up sharing a ~1,200-token prefix vs the same prompt cold (time to first token).
 * Raw and stack alternate request by request (and round by round), so both meet the same machine.
 * The stack's client is node:http with keep-alive (`lean-http.ts`): `/run`, then `/stream` long polls.
 * Prints a table and writes the figures, the machine and the versions to
 * `bench/results/serving-<time>.json`. `BENCH_MODEL=/path/model.gguf` benchmarks another model
 * (default: the generated tiny model); `BENCH_RUNS` sets the runs of (a) (default 50).
 *
 *   npm run bench -- serving
 */
import { readFileSync } from "node:fs";
import { mkdir, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import {
  getLlama,
  LlamaCompletion,
  type LlamaContext,
  LlamaLogLevel,
  type Token,
} from "node-llama-cpp";
import { packageRoot } from "../../shared/paths.js";
import { tinyModelPath } from "../support/models.js";
import { TestStack } from "../support/stack.js";
import { benchRuns, percentile } from "./bench-stats.js";
import { closeLeanHttp } from "./lean-http.js";
import { stackComplete, type Timed } from "./stack-complete.js";

const runs = Math.max(benchRuns(50), 1);
const singleTokens = 128;
const concurrentTokens = 256;
// Rounds of 8 vary by ±10 % on a 2-core machine: enough of them for a stable median.
const concurrentRounds = Math.max(5, Math.round(runs / 5));
const contextSize = 2048;
const modelPath = process.env.BENCH_MODEL ?? (await tinyModelPath());

/** A short prompt that differs from the previous one from its first word (no prefix to reuse). */
const shortPrompt = (index: number) =>
  `${["Once", "The", "A", "My"][index % 4]} ${index} upon a time`;
/** About 1,200 tokens of the tiny model (≈ as many words); each variant starts differently. */
const longPrefix = (variant: number) =>
  `${variant} ${Array.from({ length: 150 }, (_, i) => `the dog ran to the sun ${i}`).join(" ")}`;

type Complete = (prompt: string, maxTokens: number) => Promise<Timed>;

/**
 * (a) and (b), raw and stack interleaved (a raw request, then the same through the stack; a raw
 * round of 8, then a stack round), so that both meet the same machine, whatever else it does.
 */
async function singleAndConcurrent(raw: Complete, stack: Complete) {
  for (const complete of [raw, stack]) await complete(shortPrompt(999), 16); // warm-up
  const single = { raw: [] as Timed[], stack: [] as Timed[] };
  for (let i = 0; i < runs; i += 1) {
    single.raw.push(await raw(shortPrompt(i), singleTokens));
    single.stack.push(await stack(shortPrompt(i), singleTokens));
  }
  const aggregate = { raw: [] as number[], stack: [] as number[] };
  // When the last of a round's 8 jobs showed its first text: how long a round takes to ramp up.
  const lastFirst = { raw: [] as number[], stack: [] as number[] };
  for (let round = 0; round < concurrentRounds; round += 1) {
    for (const kind of ["raw", "stack"] as const) {
      const complete = kind === "raw" ? raw : stack;
      const start = performance.now();
      const results = await Promise.all(
        Array.from({ length: 8 }, (_, i) => complete(shortPrompt(round * 8 + i), concurrentTokens)),
      );
      const seconds = (performance.now() - start) / 1000;
      aggregate[kind].push(results.reduce((sum, r) => sum + r.tokens, 0) / seconds);
      lastFirst[kind].push(Math.max(...results.map((r) => r.ttftMs)));
    }
  }
  return { single, aggregate, lastFirst };
}

// --- raw node-llama-cpp -------------------------------------------------------------------------

async function rawComplete(
  context: LlamaContext,
  prompt: string,
  maxTokens: number,
): Promise<Timed> {
  const sequence = context.getSequence();
  const completion = new LlamaCompletion({ contextSequence: sequence });
  let tokens = 0;
  let first = 0;
  const start = performance.now();
  await completion.generateCompletion(prompt, {
    maxTokens,
    temperature: 0,
    repeatPenalty: false,
    onToken: (generated: Token[]) => {
      tokens += generated.length;
    },
    onTextChunk: () => {
      first ||= performance.now();
    },
  });
  const end = performance.now();
  completion.dispose({ disposeSequence: false });
  await sequence.dispose();
  return { ttftMs: first - start, totalMs: end - start, tokens };
}

/** (c) and (d), through the stack alone. */
async function mixedLoadAndCache(stack: TestStack) {
  // (c) a short job alone, then 0.5 s after two long ones started.
  const shortAlone: number[] = [];
  const shortBeside: number[] = [];
  for (let i = 0; i < 3; i += 1) {
    shortAlone.push((await stackComplete(stack, shortPrompt(100 + i), 8)).totalMs);
    const long = [1, 2].map((n) => stackComplete(stack, `${n} ${i} a long story`, 1500));
    await new Promise((resolve) => setTimeout(resolve, 500));
    shortBeside.push((await stackComplete(stack, shortPrompt(200 + i), 8)).totalMs);
    await Promise.all(long);
  }

  // (d) a follow-up sharing a ~1,200-token prefix vs that prefix cold.
  const cold: number[] = [];
  const warm: number[] = [];
  for (let i = 0; i < 3; i += 1) {
    const prefix = longPrefix(10 + i);
    const first = await stackComplete(stack, prefix, 8);
    cold.push(first.ttftMs);
    warm.push((await stackComplete(stack, `${prefix} and then the cat`, 8)).ttftMs);
  }
  return { shortAlone, shortBeside, cold, warm };
}

// --- the run ------------------------------------------------------------------------------------

const median = (values: readonly number[]) => percentile(values, 50);
const p99 = (values: readonly number[]) => percentile(values, 99);
const speed = (t: Timed) => (t.tokens * 1000) / t.totalMs;

const llama = await getLlama({ build: "never", gpu: false, logLevel: LlamaLogLevel.error });
const context = await (await llama.loadModel({ modelPath })).createContext({
  contextSize,
  sequences: 8,
  threads: 1,
});
const stack = await TestStack.start({
  models: `bench=${modelPath}`,
  env: { MODEL_SEQUENCES: "8", CONTEXT_SIZE: String(contextSize), LLAMA_THREADS: "1" },
  label: "bench-serving",
});
let measured: Awaited<ReturnType<typeof singleAndConcurrent>>;
let stackResult: Awaited<ReturnType<typeof mixedLoadAndCache>>;
const rawLongPromptTtftMs: number[] = [];
try {
  measured = await singleAndConcurrent(
    (prompt, maxTokens) => rawComplete(context, prompt, maxTokens),
    (prompt, maxTokens) => stackComplete(stack, prompt, maxTokens),
  );
  for (let i = 0; i < 3; i += 1) {
    rawLongPromptTtftMs.push((await rawComplete(context, longPrefix(i), 8)).ttftMs);
  }
  stackResult = await mixedLoadAndCache(stack);
} finally {
  closeLeanHttp();
  await stack.stop();
  await llama.dispose();
}

const rawTtft = measured.single.raw.map((t) => t.ttftMs);
const stackTtft = measured.single.stack.map((t) => t.ttftMs);
const figures = {
  single: {
    raw: {
      ttftMsP50: median(rawTtft),
      ttftMsP99: p99(rawTtft),
      tokPerSP50: median(measured.single.raw.map(speed)),
    },
    stack: {
      ttftMsP50: median(stackTtft),
      ttftMsP99: p99(stackTtft),
      tokPerSP50: median(measured.single.stack.map(speed)),
    },
    ttftOverheadMsP50: median(stackTtft) - median(rawTtft),
    ttftOverheadMsP99: p99(stackTtft) - p99(rawTtft),
  },
  concurrent8: {
    rawTokPerSP50: median(measured.aggregate.raw),
    stackTokPerSP50: median(measured.aggregate.stack),
    ratio: median(measured.aggregate.stack) / median(measured.aggregate.raw),
    rawLastFirstTextMsP50: median(measured.lastFirst.raw),
    stackLastFirstTextMsP50: median(measured.lastFirst.stack),
  },
  shortBesideLong: {
    aloneMsP50: median(stackResult.shortAlone),
    besideTwoLongMsP50: median(stackResult.shortBeside),
    targetMs: 2 * median(stackResult.shortAlone) + 10,
  },
  sharedPrefix: {
    coldTtftMsP50: median(stackResult.cold),
    followUpTtftMsP50: median(stackResult.warm),
    ratio: median(stackResult.warm) / median(stackResult.cold),
    rawColdTtftMsP50: median(rawLongPromptTtftMs),
  },
};

const f = (n: number, digits = 1) => n.toFixed(digits);
const lines = [
  `Model: ${process.env.BENCH_MODEL ? path.basename(modelPath) : "generated tiny llama"}; greedy; LLAMA_THREADS=1, MODEL_THREADS=1, MODEL_SEQUENCES=8, context ${contextSize}; ${runs} single requests, ${concurrentRounds} rounds of 8.`,
  "",
  "| measure | raw node-llama-cpp | stack | target |",
  "|---|---|---|---|",
  `| (a) 1 request, ${singleTokens} tokens: time to first token p50 / p99 (ms) | ${f(figures.single.raw.ttftMsP50)} / ${f(figures.single.raw.ttftMsP99)} | ${f(figures.single.stack.ttftMsP50)} / ${f(figures.single.stack.ttftMsP99)} | overhead ≤ 3 / ≤ 15 |`,
  `| (a) TTFT overhead of the stack p50 / p99 (ms) | | ${f(figures.single.ttftOverheadMsP50)} / ${f(figures.single.ttftOverheadMsP99)} | ≤ 3 / ≤ 15 |`,
  `| (a) 1 request: tokens/s p50 | ${f(figures.single.raw.tokPerSP50, 0)} | ${f(figures.single.stack.tokPerSP50, 0)} | |`,
  `| (b) 8 concurrent × ${concurrentTokens} tokens: aggregate tokens/s p50 | ${f(figures.concurrent8.rawTokPerSP50, 0)} | ${f(figures.concurrent8.stackTokPerSP50, 0)} (${f(figures.concurrent8.ratio, 2)}×) | ≥ 0.95× |`,
  `| (b) a round's last first text, from its start (ms, p50) | ${f(figures.concurrent8.rawLastFirstTextMsP50)} | ${f(figures.concurrent8.stackLastFirstTextMsP50)} | |`,
  `| (c) 8-token job: alone / next to two 1,500-token jobs (ms, p50) | | ${f(figures.shortBesideLong.aloneMsP50)} / ${f(figures.shortBesideLong.besideTwoLongMsP50)} | ≤ ${f(figures.shortBesideLong.targetMs)} |`,
  `| (d) ~1,200-token prompt: TTFT cold / follow-up sharing it (ms, p50) | ${f(figures.sharedPrefix.rawColdTtftMsP50)} cold | ${f(figures.sharedPrefix.coldTtftMsP50)} / ${f(figures.sharedPrefix.followUpTtftMsP50)} (${f(figures.sharedPrefix.ratio, 3)}×) | ≤ 0.1× |`,
];
process.stdout.write(`${lines.join("\n")}\n`);

function versionOf(name: string): string {
  const file = path.join(packageRoot(), "node_modules", name, "package.json");
  return (JSON.parse(readFileSync(file, "utf8")) as { version: string }).version;
}

const cpus = os.cpus();
const record = {
  benchmark: "serving",
  date: new Date().toISOString(),
  machine: {
    cpu: cpus[0]?.model ?? "unknown",
    cores: cpus.length,
    memoryGiB: Math.round(os.totalmem() / 2 ** 30),
    loadAverage: os.loadavg(),
    platform: `${os.platform()} ${os.release()}`,
  },
  versions: {
    node: process.version,
    "node-llama-cpp": versionOf("node-llama-cpp"),
    bullmq: versionOf("bullmq"),
    ioredis: versionOf("ioredis"),
    piscina: versionOf("piscina"),
  },
  settings: {
    model: path.basename(modelPath),
    runs,
    concurrentRounds,
    singleTokens,
    concurrentTokens,
    contextSize,
  },
  figures,
};
const dir = path.join(packageRoot(), "bench", "results");
await mkdir(dir, { recursive: true });
const file = path.join(dir, `serving-${record.date.replace(/[:.]/g, "-")}.json`);
await writeFile(file, `${JSON.stringify(record, null, 2)}\n`);
process.stdout.write(`\nwritten: ${path.relative(packageRoot(), file)}\n`);
