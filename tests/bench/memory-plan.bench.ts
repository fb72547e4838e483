/**
 * `npm run bench -- memory-plan`: the memory plan's estimate for the generated tiny model — how
 * long `estimateMemory` takes (a short-lived thread asking node-llama-cpp, as the gpu-worker does
 * at start), and its estimate next to what llama.cpp reports allocated once the model is loaded
 * and the context created (`getLlamaMemoryUsage().cpuRam`), per context shape.
 *
 *   BENCH_RUNS=20 npm run bench -- memory-plan
 */
import { getLlama, LlamaLogLevel } from "node-llama-cpp";
import { estimateMemory } from "../../gpu-worker/memory/estimate-memory.js";
import { tinyModelPath } from "../support/models.js";
import { benchRuns, print, row, tableHead } from "./bench-stats.js";

const runs = benchRuns();
const file = await tinyModelPath();
const shapes = [
  { name: "1024x1", path: file, contextSize: 1024, sequences: 1 },
  { name: "1024x4", path: file, contextSize: 1024, sequences: 4 },
  { name: "2048x8", path: file, contextSize: 2048, sequences: 8 },
];

const oneMs: number[] = [];
const allMs: number[] = [];
const first = shapes[0];
if (first === undefined) throw new Error("no shape");
for (let i = 0; i < runs; i += 1) {
  let start = performance.now();
  await estimateMemory({ gpu: false, models: [first] });
  oneMs.push(performance.now() - start);
  start = performance.now();
  await estimateMemory({ gpu: false, models: shapes });
  allMs.push(performance.now() - start);
}

const report = await estimateMemory({ gpu: false, models: shapes });
const lines = [
  `\`estimateMemory\` on the CPU backend, generated tiny llama (tests/support/models.ts defaults, f16), ${runs} runs; actual bytes: llama.cpp's own count of the buffers it allocated (\`llama.getLlamaMemoryUsage().cpuRam\`, which node-llama-cpp fills from the native model's and context's memory breakdown; not process RSS) after \`loadModel\` + \`createContext\` (threads 1) in a fresh llama per shape.`,
  "",
  ...tableHead,
  row("estimate, 1 model", oneMs, "ms", 0),
  row(`estimate, ${shapes.length} context shapes of the model at once`, allMs, "ms", 0),
  "",
  "| context (size × sequences) | estimated weights + context | llama.cpp reports | estimate / actual (difference) |",
  "|---|---|---|---|",
];
const mib = (bytes: number) => `${(bytes / 2 ** 20).toFixed(3)} MiB`;
for (const [index, shape] of shapes.entries()) {
  const estimate = report.models[index];
  if (estimate === undefined) throw new Error(`no estimate for ${shape.name}`);
  const estimated = estimate.weightsBytes + estimate.contextBytes;
  const llama = await getLlama({ build: "never", gpu: false, logLevel: LlamaLogLevel.error });
  let actual: number;
  try {
    const model = await llama.loadModel({ modelPath: file });
    await model.createContext({
      contextSize: shape.contextSize,
      sequences: shape.sequences,
      threads: 1,
    });
    actual = (await llama.getLlamaMemoryUsage()).cpuRam;
  } finally {
    await llama.dispose();
  }
  lines.push(
    `| ${shape.contextSize} × ${shape.sequences} | ${mib(estimated)} (${mib(estimate.weightsBytes)} + ${mib(estimate.contextBytes)}) | ${mib(actual)} | ${(estimated / actual).toFixed(4)} (${estimated - actual} bytes) |`,
  );
}
print(lines);
