/**
 * Generation speed measured two ways on the same model and prompt: node-llama-cpp alone (no
 * pool, no Redis, no HTTP) and the whole stack (HTTP → Redis → model thread → Redis → HTTP), one
 * request at a time or several at once. The local-stack benchmark and the GPU check share them.
 */
import { getLlama, LlamaCompletion, LlamaLogLevel } from "node-llama-cpp";
import type { GpuChoice } from "../../shared/config/index.js";
import { isFinalChunk, type StreamChunk } from "../../shared/protocol/index.js";
import { type TestStack, textOf } from "../support/stack.js";

/** Per request: time to its first text and to its end (ms); per round: tokens/s of all requests. */
export interface GenerationSamples {
  ttftMs: number[];
  totalMs: number[];
  tokensPerSecond: number[];
  /** Stack only: chunks per job. */
  chunks: number[];
}

export interface GenerationShape {
  prompt: string;
  maxTokens: number;
  /** Requests started together in each round. */
  concurrent: number;
  /** Rounds. */
  runs: number;
  /** Unmeasured rounds first (page faults, first-use allocations, kernel loading). Default 0. */
  warmupRuns?: number;
}

export interface DirectOptions extends GenerationShape {
  modelPath: string;
  gpu: GpuChoice;
  /** llama.cpp CPU threads. */
  llamaThreads: number;
  /** Tokens per sequence. */
  contextSize: number;
}

function emptySamples(): GenerationSamples {
  return { ttftMs: [], totalMs: [], tokensPerSecond: [], chunks: [] };
}

/**
 * node-llama-cpp alone: one context of `concurrent` sequences, each round one greedy completion
 * per sequence, all at once. Tokens/s counts the tokens each completion really produced.
 */
export async function measureDirect(options: DirectOptions): Promise<GenerationSamples> {
  const llama = await getLlama({ build: "never", gpu: options.gpu, logLevel: LlamaLogLevel.error });
  try {
    const model = await llama.loadModel({ modelPath: options.modelPath });
    const context = await model.createContext({
      contextSize: options.contextSize,
      sequences: options.concurrent,
      threads: options.llamaThreads,
    });
    const out = emptySamples();
    const warmup = options.warmupRuns ?? 0;
    for (let run = -warmup; run < options.runs; run += 1) {
      const start = performance.now();
      const results = await Promise.all(
        Array.from({ length: options.concurrent }, async () => {
          const sequence = context.getSequence();
          const completion = new LlamaCompletion({ contextSequence: sequence });
          let first = 0;
          let tokens = 0;
          await completion.generateCompletion(options.prompt, {
            maxTokens: options.maxTokens,
            temperature: 0,
            repeatPenalty: false,
            onToken: (chunk) => {
              first ||= performance.now();
              tokens += chunk.length;
            },
          });
          const end = performance.now();
          completion.dispose({ disposeSequence: false });
          await sequence.dispose();
          return { first, end, tokens };
        }),
      );
      if (run < 0) continue;
      const end = Math.max(...results.map((result) => result.end));
      for (const result of results) {
        out.ttftMs.push(result.first - start);
        out.totalMs.push(result.end - start);
      }
      const tokens = results.reduce((sum, result) => sum + result.tokens, 0);
      out.tokensPerSecond.push((tokens * 1000) / (end - start));
    }
    return out;
  } finally {
    // Nothing generates any more, so disposing is safe.
    await llama.dispose();
  }
}

export interface StackRunOptions extends GenerationShape {
  /** The request's `model`; the stack's only model when unset. */
  model?: string | undefined;
}

/**
 * The whole stack: each round `concurrent` jobs through `/run` and `/stream`. Time to first
 * token is to the first chunk with text; tokens/s counts the completion tokens the final chunks
 * report (`usage`).
 */
export async function measureStack(
  stack: TestStack,
  options: StackRunOptions,
): Promise<GenerationSamples> {
  const out = emptySamples();
  const warmup = options.warmupRuns ?? 0;
  for (let run = -warmup; run < options.runs; run += 1) {
    const start = performance.now();
    const results = await Promise.all(
      Array.from({ length: options.concurrent }, async () => {
        const job = await stack.run({
          ...(options.model === undefined ? {} : { model: options.model }),
          prompt: options.prompt,
          sampling_params: { max_tokens: options.maxTokens, temperature: 0 },
        });
        let first = 0;
        const { chunks, status, error } = await stack.streamAll(job.id, (chunk: StreamChunk) => {
          if (!isFinalChunk(chunk)) first ||= performance.now();
        });
        if (status !== "COMPLETED" || textOf(chunks).length === 0) {
          throw new Error(`job ${job.id} ended ${status} with no text${error ? `: ${error}` : ""}`);
        }
        return { first, end: performance.now(), chunks };
      }),
    );
    if (run < 0) continue;
    const end = Math.max(...results.map((result) => result.end));
    let tokens = 0;
    for (const result of results) {
      out.ttftMs.push(result.first - start);
      out.totalMs.push(result.end - start);
      out.chunks.push(result.chunks.length);
      tokens += completionTokens(result.chunks) ?? options.maxTokens;
    }
    out.tokensPerSecond.push((tokens * 1000) / (end - start));
  }
  return out;
}

/** The completion tokens a job's final chunk reports. */
function completionTokens(chunks: readonly StreamChunk[]): number | undefined {
  const last = chunks.at(-1);
  return last !== undefined && isFinalChunk(last) ? last.usage.completion_tokens : undefined;
}
