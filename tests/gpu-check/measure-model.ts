/**
 * A child process of the GPU check: loads one model exactly as a model thread does (the
 * gpu-worker's own `loadModel`, with the memory plan's options). Two modes:
 *
 *   node dist/tests/gpu-check/measure-model.js '<ModelThreadOptions as JSON>'
 *   node dist/tests/gpu-check/measure-model.js '<ModelThreadOptions as JSON>' first-request cold|warm PROMPT_TOKENS
 *
 * The first prints what node-llama-cpp reports once the model is loaded as one JSON line, holds the
 * model while the parent reads `nvidia-smi`, and exits when its stdin closes: one process per
 * model, so each model's memory is measured alone. The second measures the first request after
 * the load (`first-request.ts`): it loads the model, warms it up as a model thread does (`warm`)
 * or not (`cold`), runs two requests of the same length one after the other, prints one JSON line
 * and exits; a fresh process, so nothing of the GPU's kernels is loaded yet.
 */
import { once } from "node:events";
import { generate } from "../../gpu-worker/thread/generate.js";
import { type LoadedModel, loadModel, startBackend } from "../../gpu-worker/thread/load-model.js";
import { warmUp } from "../../gpu-worker/thread/warm-up.js";
import type { ModelThreadOptions } from "../../shared/protocol/index.js";
import { greedyTask } from "../support/tasks.js";

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

/** One request of the first-request measure, timed from its start. */
export interface TimedRequest {
  readonly promptTokens: number;
  /** Prompt tokens a sequence already held (0: the whole prompt was evaluated). */
  readonly cachedTokens: number;
  readonly completionTokens: number;
  /** Until the first piece of text, as a model thread hands it on. */
  readonly firstTextMs: number | undefined;
  readonly totalMs: number;
}

/** What the child reports in the first-request mode. */
export interface FirstRequestReport {
  readonly pid: number;
  readonly backend: string;
  /** `cold`: the first request right after the load; `warm`: after the warm-up, as in the pool. */
  readonly mode: "cold" | "warm";
  readonly loadMs: number;
  /** The model thread's warm-up (`warm` only). */
  readonly warmUpMs: number | undefined;
  /** The first request after the load (or the warm-up), then the second. */
  readonly requests: readonly TimedRequest[];
}

/** Tokens each request of the first-request measure generates. */
const completionTokens = 8;

/**
 * A prompt of about `tokens` tokens (at least that many) that shares no word with the other
 * request's, so that nothing of one is a prefix of the other.
 */
function promptOf(loaded: LoadedModel, index: number, tokens: number): string {
  const phrase = index === 0 ? "the dog ran to the park and back " : "a cat sat on my mat all day ";
  const perPhrase = Math.max(1, loaded.model.tokenize(phrase).length);
  let repeats = Math.ceil(tokens / perPhrase);
  // Phrases tokenize shorter in a row than alone (a word may join the space before it).
  while (loaded.model.tokenize(phrase.repeat(repeats).trim()).length < tokens) repeats += 1;
  return phrase.repeat(repeats).trim();
}

async function timedRequest(loaded: LoadedModel, prompt: string): Promise<TimedRequest> {
  const start = performance.now();
  let firstTextMs: number | undefined;
  const result = await generate(loaded, greedyTask(prompt, completionTokens), {
    signal: new AbortController().signal,
    onText: () => {
      firstTextMs ??= performance.now() - start;
    },
  });
  return {
    promptTokens: result.promptTokens,
    cachedTokens: result.cachedTokens,
    completionTokens: result.completionTokens,
    firstTextMs,
    totalMs: performance.now() - start,
  };
}

async function firstRequest(options: ModelThreadOptions, mode: string, tokens: number) {
  if (mode !== "cold" && mode !== "warm") throw new Error(`mode must be cold or warm, not ${mode}`);
  if (!Number.isInteger(tokens) || tokens < 1)
    throw new Error("PROMPT_TOKENS must be a whole number");
  const start = performance.now();
  // Without the prompt cache, each request evaluates its whole prompt.
  const llama = await startBackend(options, () => options.modelName);
  const loaded = await loadModel(llama, { ...options, promptCache: false });
  const loadMs = performance.now() - start;
  const warmUpMs = mode === "warm" ? await warmUp(loaded) : undefined;
  // Room for the completion in the sequence.
  const promptTokens = Math.min(tokens, loaded.context.contextSize - completionTokens - 32);
  const requests: TimedRequest[] = [];
  for (const index of [0, 1]) {
    requests.push(await timedRequest(loaded, promptOf(loaded, index, promptTokens)));
  }
  const report: FirstRequestReport = {
    pid: process.pid,
    backend: loaded.llama.gpu === false ? "cpu" : loaded.llama.gpu,
    mode,
    loadMs,
    warmUpMs,
    requests,
  };
  process.stdout.write(`${JSON.stringify(report)}\n`);
  // Nothing generates any more, so disposing is safe.
  await loaded.llama.dispose();
}

async function loadAndHold(options: ModelThreadOptions) {
  const start = performance.now();
  const { llama, model, context } = await loadModel(
    await startBackend(options, () => options.modelName),
    options,
  );
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
}

const options = JSON.parse(process.argv[2] ?? "{}") as ModelThreadOptions;
if (process.argv[3] === "first-request") {
  await firstRequest(options, process.argv[4] ?? "", Number(process.argv[5]));
} else await loadAndHold(options);
