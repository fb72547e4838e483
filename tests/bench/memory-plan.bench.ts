/**
 * `npm run bench -- memory-plan`: the memory plan's estimate for the generated tiny model — how
 * long `estimateMemory` takes (on a started spare model thread, as the gpu-worker does at start),
 * and, per context shape, its estimate next to what a process that loads the model
 * and creates the context really takes: llama.cpp's own count of its buffers
 * (`getLlamaMemoryUsage().cpuRam`) and the growth of the process's resident memory once a short
 * generation has touched the weights and the KV cache. Each shape is measured in a fresh process.
 *
 *   BENCH_RUNS=20 npm run bench -- memory-plan
 */
import { execFile } from "node:child_process";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { getLlama, LlamaCompletion, LlamaLogLevel } from "node-llama-cpp";
import { estimateMemory } from "../../gpu-worker/memory/estimate-memory.js";
import { ThreadSpares } from "../../gpu-worker/pool/thread-spares.js";
import { tinyModelPath } from "../support/models.js";
import { benchRuns, percentile, print, row, tableHead } from "./bench-stats.js";

interface Actual {
  /** llama.cpp's count of the model's and the context's buffers. */
  counted: number;
  /** Resident memory after load + context + generation, minus before the load. */
  rssGrowth: number;
}

const file = await tinyModelPath();

/** In the child: load, create the context, generate a little, report the memory. */
async function measure(contextSize: number, sequences: number): Promise<Actual> {
  const llama = await getLlama({ build: "never", gpu: false, logLevel: LlamaLogLevel.error });
  const before = process.memoryUsage().rss;
  const model = await llama.loadModel({ modelPath: file });
  const context = await model.createContext({ contextSize, sequences, threads: 1 });
  const completion = new LlamaCompletion({ contextSequence: context.getSequence() });
  await completion.generateCompletion("Once upon a time", { maxTokens: 16, temperature: 0 });
  const rssGrowth = process.memoryUsage().rss - before;
  const counted = (await llama.getLlamaMemoryUsage()).cpuRam;
  await llama.dispose();
  return { counted, rssGrowth };
}

if (process.argv[2] === "--measure") {
  const actual = await measure(Number(process.argv[3]), Number(process.argv[4]));
  process.stdout.write(JSON.stringify(actual));
  process.exit(0);
}

const runs = benchRuns();
const shapes = [
  { name: "1024x1", path: file, contextSize: 1024, sequences: 1 },
  { name: "1024x4", path: file, contextSize: 1024, sequences: 4 },
  { name: "2048x8", path: file, contextSize: 2048, sequences: 8 },
];

const spares = new ThreadSpares({
  count: 1,
  backend: { gpu: false, gpuMemoryUtilization: 0.95, deltaWindowMs: 0 },
});
// The spare's start (node-llama-cpp's import and `getLlama`) is not the estimate's.
await estimateMemory({ models: shapes.slice(0, 1) }, spares);
const oneMs: number[] = [];
const allMs: number[] = [];
for (let i = 0; i < runs; i += 1) {
  let start = performance.now();
  await estimateMemory({ models: shapes.slice(0, 1) }, spares);
  oneMs.push(performance.now() - start);
  start = performance.now();
  await estimateMemory({ models: shapes }, spares);
  allMs.push(performance.now() - start);
}

const report = await estimateMemory({ models: shapes }, spares);
await spares.close();
const lines = [
  `\`estimateMemory\` on a started spare thread, CPU backend (mmap ${report.mmap ? "on" : "off"}), generated tiny llama (tests/support/models.ts defaults, f16), ${runs} runs. Actual, per shape, the median of ${Math.min(runs, 5)} fresh processes: llama.cpp's own count of its buffers (\`getLlamaMemoryUsage().cpuRam\`, filled from the native model's and context's memory breakdown) and the growth of the process's RSS from before \`loadModel\` to after \`createContext\` and a 16-token generation (threads 1).`,
  "",
  ...tableHead,
  row("estimate, 1 model", oneMs, "ms", 0),
  row(`estimate, ${shapes.length} context shapes of the model at once`, allMs, "ms", 0),
  "",
  "| context (size × sequences) | estimated (weights + context) | llama.cpp counts | estimate − count | RSS growth | estimate / RSS growth |",
  "|---|---|---|---|---|---|",
];
const mib = (bytes: number) => `${(bytes / 2 ** 20).toFixed(2)} MiB`;
const self = fileURLToPath(import.meta.url);
/** Fresh processes per shape (about a second each); the table shows their median. */
const actualRuns = Math.min(runs, 5);
for (const [index, shape] of shapes.entries()) {
  const estimate = report.models[index];
  if (estimate === undefined) throw new Error(`no estimate for ${shape.name}`);
  const estimated = estimate.weightsBytes + estimate.contextBytes;
  const counted: number[] = [];
  const growth: number[] = [];
  for (let i = 0; i < actualRuns; i += 1) {
    const { stdout } = await promisify(execFile)(process.execPath, [
      self,
      "--measure",
      String(shape.contextSize),
      String(shape.sequences),
    ]);
    const actual = JSON.parse(stdout) as Actual;
    counted.push(actual.counted);
    growth.push(actual.rssGrowth);
  }
  const actual = { counted: percentile(counted, 50), rssGrowth: percentile(growth, 50) };
  lines.push(
    `| ${shape.contextSize} × ${shape.sequences} | ${mib(estimated)} (${mib(estimate.weightsBytes)} + ${mib(estimate.contextBytes)}) | ${mib(actual.counted)} | ${estimated - actual.counted} bytes | ${mib(actual.rssGrowth)} | ${(estimated / actual.rssGrowth).toFixed(2)} |`,
  );
}
print(lines);
