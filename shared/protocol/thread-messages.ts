import type { MessagePort } from "node:worker_threads";
import type { GpuChoice } from "../config/index.js";
import type { ErrorInfo } from "../errors/index.js";
import type { ChoiceResult } from "./choice-result.js";
import type { FinishReason } from "./finish-reason.js";
import type { GenerationTask } from "./generation-task.js";
import type { TokenLogprob } from "./token-logprob.js";
import type { ToolCallPiece } from "./tool-call-piece.js";

/**
 * `workerData` of a model thread: its backend. A thread starts the backend (node-llama-cpp and
 * llama.cpp's) as it starts, before it holds any model, so a spare thread waits ready for the
 * model it is given (see `gpu-worker/pool/thread-spares.ts`).
 */
export interface ThreadBackendOptions {
  gpu: GpuChoice;
  /** Share of GPU memory llama.cpp may use, in (0, 1]. */
  gpuMemoryUtilization: number;
  /** `DELTA_WINDOW_MS`: text generated within this window goes to the main thread as one piece. */
  deltaWindowMs: number;
}

/** A thread's backend and the model it holds, in one (the GPU check loads models this way). */
export type ModelThreadOptions = ThreadBackendOptions & ModelLoadOptions;

/** The model a thread holds, given by its first task ({@link LoadTask}). */
export interface ModelLoadOptions {
  modelName: string;
  modelPath: string;
  /** Tokens per sequence; `undefined` = the model's training size, at most 4096. */
  contextSize: number | undefined;
  /** Sequences of the thread's context = jobs the thread runs at once. */
  sequences: number;
  /** llama.cpp CPU threads. */
  llamaThreads: number;
  /**
   * The memory plan's VRAM cap for this thread (node-llama-cpp `setVramCap`), in bytes; the
   * thread fits its GPU layers to it. `undefined` on a CPU or without a plan.
   */
  vramCapBytes?: number | undefined;
  /** `PROMPT_CACHE`: keep sequences' tokens between jobs and reuse shared prefixes. */
  promptCache: boolean;
  /** The model's `embeddings` setting: the thread also holds an embedding context. */
  embeddings?: boolean;
}

/**
 * A job handed to a model thread. `port` carries the job's messages in both directions. `model`
 * names what the thread holds: a thread that holds nothing (piscina's replacement of one that
 * died) loads it first.
 */
export interface JobTask {
  kind: "job";
  jobId: string;
  task: GenerationTask;
  /** A continuation: the tokens a lost attempt delivered, to evaluate and go on from. */
  continuation?: Continuation;
  port: MessagePort;
  model: ModelLoadOptions;
}

/** What a job's next attempt goes on from, after its gpu-worker was lost (`continue.ts`). */
export interface Continuation {
  /** The ids of the tokens whose text the caller got, in order. */
  tokens: number[];
}

/** Loads the model a thread holds from then on; resolves with its report. */
export interface LoadTask {
  kind: "load";
  model: ModelLoadOptions;
}

/**
 * Lets go of the thread's model; and of its backend too, before the thread is stopped, unless
 * `keepBackend`: the thread then waits for another model, as a spare.
 */
export interface UnloadTask {
  kind: "unload";
  keepBackend?: boolean;
}

export type ThreadTask = JobTask | LoadTask | UnloadTask;

export interface ThreadResult {
  finishReason: FinishReason;
  promptTokens: number;
  /** Prompt tokens the job's sequence already held (the prompt cache), not evaluated again. */
  cachedTokens: number;
  completionTokens: number;
  /** The seed the job sampled with (the request's, else drawn): replaying it repeats the text. */
  seed?: number;
  /** An embeddings job's vectors, one per input text, in order. */
  embeddings?: number[][];
  /**
   * With `n` > 1, each choice's end, in index order; `finishReason` is then choice 0's and
   * `completionTokens` the sum of all.
   */
  choices?: ChoiceResult[];
}

/** What a delta adds to its text, when the job asked for it: its choice, its tokens' logprobs. */
export interface DeltaExtras {
  /** The choice (`n` > 1); absent: 0. */
  index?: number;
  logprobs?: TokenLogprob[];
  /**
   * The ids of the tokens whose text this is, exactly (text held back for a stop string or an
   * unfinished character is not here yet, nor are its tokens): what a continuation replays.
   */
  tokens?: number[];
  /** Function calls streamed after the text (`tool-call-piece.ts`). */
  toolCalls?: ToolCallPiece[];
}

/** Thread → main, on the task's port. `end` or `error` is always the last message. */
export type ThreadToMainMessage =
  /** The job holds a context sequence; `sequencesInUse` counts the thread's, this one included. */
  | { type: "started"; threadId: number; sequencesInUse: number }
  | ({ type: "delta"; text: string } & DeltaExtras)
  | { type: "end"; result: ThreadResult }
  | { type: "error"; error: ErrorInfo };

/** Main → thread, on the task's port. */
export type MainToThreadMessage = { type: "abort" };

/** Thread → main on the thread's parent port, once, after loading (piscina relays it). */
export type ThreadLoadReport =
  | {
      type: "model-loaded";
      modelName: string;
      contextSize: number;
      /** The most text bytes one token stands for; absent when unknown (see `prompt-bytes.ts`). */
      maxTokenBytes?: number;
      /**
       * How long the thread's warm-up took (one token evaluated after loading, before this
       * report), in ms; absent from a thread that does not warm up.
       */
      warmUpMs?: number;
      threadId: number;
    }
  | { type: "model-load-failed"; modelName: string; message: string; threadId: number };

/**
 * Thread → main on the thread's parent port, every {@link threadStatsIntervalMs} once loaded: the
 * thread's own memory and what it holds for jobs, so that a growth is seen where it happens.
 */
export interface ThreadStatsReport {
  type: "thread-stats";
  modelName: string;
  threadId: number;
  /** The thread's V8 heap (`v8.getHeapStatistics()`): in use, and its size. */
  heapUsedBytes: number;
  heapTotalBytes: number;
  /** Memory of the thread's JavaScript objects held outside its heap (`external_memory`). */
  externalBytes: number;
  /** Jobs open on the thread (each with its port and text window); 0 when idle. */
  jobs: number;
  /** Context sequences lent to jobs now; 0 when idle. */
  sequencesInUse: number;
  /** Tokens the thread's sequences hold (the prompt cache), at most context size × sequences. */
  tokensHeld: number;
  /** node-llama-cpp's context state (`LlamaContext.stateSize`), in bytes. */
  contextStateBytes: number;
  /** VRAM in use on the device, as llama.cpp reports it (0 on a CPU). */
  vramUsedBytes: number;
}

/** What a model thread posts on its parent port. */
export type ThreadParentMessage = ThreadLoadReport | ThreadStatsReport;

/** How often a loaded model thread posts its {@link ThreadStatsReport}. */
export const threadStatsIntervalMs = 5000;
