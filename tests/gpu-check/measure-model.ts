/**
 * A child process of the GPU check: loads one model exactly as a model thread does (the
 * gpu-worker's own `loadModel`, with the memory plan's options), prints what node-llama-cpp then
 * reports as one JSON line, holds the model while the parent reads `nvidia-smi`, and exits when
 * its stdin closes. One process per model, so each model's memory is measured alone.
 *
 *   node dist/tests/gpu-check/measure-model.js '<ModelThreadOptions as JSON>'
 */
import { once } from "node:events";
import { loadModel } from "../../gpu-worker/thread/load-model.js";
import type { ModelThreadOptions } from "../../shared/protocol/index.js";

/** What the child reports once the model and its context are loaded. */
export interface LoadedModelReport {
  readonly pid: number;
  readonly backend: string;
  readonly loadMs: number;
  readonly gpuLayers: number;
  readonly totalLayers: number | undefined;
  /** node-llama-cpp's size of the weights (`model.size`). */
  readonly modelBytes: number;
  readonly contextSize: number;
  readonly sequences: number;
  /** `llama.getVramState()` after the load. */
  readonly vram: { total: number; used: number; free: number };
  /** `llama.getLlamaMemoryUsage()`: what this llama.cpp instance holds. */
  readonly llamaUsage: { gpuVram: number; cpuRam: number };
  readonly vramCapBytes: number | undefined;
}

const options = JSON.parse(process.argv[2] ?? "{}") as ModelThreadOptions;
const start = performance.now();
const { llama, model, context } = await loadModel(options);
const vram = await llama.getVramState();
const report: LoadedModelReport = {
  pid: process.pid,
  backend: llama.gpu === false ? "cpu" : llama.gpu,
  loadMs: performance.now() - start,
  gpuLayers: model.gpuLayers,
  totalLayers: model.fileInsights.totalLayers,
  modelBytes: model.size,
  contextSize: context.contextSize,
  sequences: context.totalSequences,
  vram: { total: vram.total, used: vram.used, free: vram.free },
  llamaUsage: await llama.getLlamaMemoryUsage(),
  vramCapBytes: options.vramCapBytes,
};
process.stdout.write(`${JSON.stringify(report)}\n`);
process.stdin.resume();
await once(process.stdin, "end");
// Nothing generates here, so disposing is safe.
await llama.dispose();
