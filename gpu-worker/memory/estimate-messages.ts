/**
 * What `estimateMemory` (estimate-memory.ts) and the spare model thread that runs the estimate
 * (`estimateModels`, estimate-models.ts) pass each other: the task and its report.
 */

/** What the estimate is asked: each model's context shape (the backend is the thread's). */
export interface EstimateRequest {
  readonly models: readonly {
    readonly name: string;
    readonly path: string;
    /** Tokens per sequence; `undefined` = the model's training size, at most 4096. */
    readonly contextSize: number | undefined;
    readonly sequences: number;
    /** The model's `embeddings` setting: each thread also creates an embedding context. */
    readonly embeddings?: boolean;
  }[];
}

/** What one thread of a model allocates, by node-llama-cpp's estimate for its backend. */
export interface ModelEstimate {
  readonly name: string;
  /** The context size the threads will create (tokens per sequence). */
  readonly contextSize: number;
  /** The model's weights, in bytes of the memory the plan budgets (VRAM on a GPU, else RAM). */
  readonly weightsBytes: number;
  /** One context of `contextSize × sequences`: KV cache plus llama.cpp's compute buffers. */
  readonly contextBytes: number;
  /**
   * With the `embeddings` setting, one thread's embedding context (one sequence of `contextSize`,
   * its batch as large, see `thread/load-model.ts`); absent or 0 without it.
   */
  readonly embeddingBytes?: number;
}

/** The estimate's answer. */
export interface EstimateReport {
  /** `gpu` when llama.cpp runs on a GPU backend (the plan budgets VRAM), else `cpu` (RAM). */
  readonly device: "gpu" | "cpu";
  /** The backend's name: `cuda`, `vulkan`, `metal` or `cpu`. */
  readonly backend: string;
  /** The device's memory: VRAM on a GPU, RAM otherwise. */
  readonly totalBytes: number;
  readonly freeBytes: number;
  /** Whether weights are memory-mapped (on CPU, a model's threads then share one copy). */
  readonly mmap: boolean;
  readonly models: readonly ModelEstimate[];
}

/** The model thread's task that runs the estimate (beside `ThreadTask`, shared/protocol). */
export interface EstimateTask {
  readonly kind: "estimate";
  readonly request: EstimateRequest;
}

/** Without a configured size, a sequence gets the model's training context, capped here. */
export const DEFAULT_MAX_CONTEXT_SIZE = 4096;
