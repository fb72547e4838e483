import { MessageChannel } from "node:worker_threads";
import { Piscina } from "piscina";
import type { GpuChoice } from "../../shared/config/index.js";
import {
  type ErrorInfo,
  InternalError,
  ModelLoadError,
  PoolError,
} from "../../shared/errors/index.js";
import type { Logger } from "../../shared/log.js";
import type {
  GenerationTask,
  MainToThreadMessage,
  ModelThreadOptions,
  ThreadLoadReport,
  ThreadResult,
  ThreadTask,
  ThreadToMainMessage,
} from "../../shared/protocol/index.js";
import { threadEntryPath } from "./thread-entry-path.js";

export interface ModelPoolOptions {
  /** The model's name and its `.gguf` file. */
  model: { readonly name: string; readonly path: string };
  /** Worker threads, each holding the model loaded. */
  threads: number;
  /** Sequences per thread: jobs one thread runs at once. */
  sequences: number;
  llamaThreads: number;
  contextSize: number | undefined;
  gpu: GpuChoice;
  gpuMemoryUtilization: number;
  /** Each thread's VRAM cap from the memory plan (GPU only). */
  vramCapBytes?: number | undefined;
  log: Logger;
}

export interface RunHooks {
  /** Aborting cancels generation inside the thread (the thread itself lives on). */
  signal: AbortSignal;
  onText: (text: string) => void;
  /** The job got a context sequence in thread `threadId`, which now has `sequencesInUse` taken. */
  onStarted?: (threadId: number, sequencesInUse: number) => void;
}

/**
 * One model's piscina pool: `threads` threads that each load the model once and keep it
 * (`idleTimeout: Infinity`, `minThreads = maxThreads`), each running up to `sequences` jobs at once.
 * Atomics are disabled: piscina's default parks an idle thread's event loop, which would stall the
 * message ports that carry text and cancellations.
 */
export class ModelPool {
  readonly name: string;
  /** Jobs the pool runs at once: threads × sequences. */
  readonly capacity: number;
  readonly #piscina: Piscina;
  readonly #log: Logger;
  readonly #running = new Set<Promise<unknown>>();
  #contextSize = 0;
  #closing: Promise<void> | undefined;

  private constructor(piscina: Piscina, options: ModelPoolOptions) {
    this.#piscina = piscina;
    this.name = options.model.name;
    this.capacity = options.threads * options.sequences;
    this.#log = options.log;
  }

  /** Starts the threads and resolves once every one has loaded the model. */
  static async start(options: ModelPoolOptions): Promise<ModelPool> {
    const workerData: ModelThreadOptions = {
      modelName: options.model.name,
      modelPath: options.model.path,
      contextSize: options.contextSize,
      sequences: options.sequences,
      llamaThreads: options.llamaThreads,
      gpu: options.gpu,
      gpuMemoryUtilization: options.gpuMemoryUtilization,
      vramCapBytes: options.vramCapBytes,
    };
    const piscina = new Piscina({
      filename: threadEntryPath(),
      minThreads: options.threads,
      maxThreads: options.threads,
      concurrentTasksPerWorker: options.sequences,
      idleTimeout: Number.POSITIVE_INFINITY,
      atomics: "disabled",
      workerData,
    });
    const pool = new ModelPool(piscina, options);
    try {
      pool.#contextSize = await waitForThreads(piscina, options);
    } catch (error) {
      await piscina.destroy();
      throw error;
    }
    piscina.on("message", (message: ThreadLoadReport) => {
      // A thread that died is replaced by piscina; its replacement reports here.
      if (message.type === "model-load-failed") {
        pool.#log.error("a replacement model thread failed to load", { model: pool.name });
      }
    });
    piscina.on("error", (error: Error) => {
      pool.#log.error("model thread error", { model: pool.name, error: error.name });
    });
    return pool;
  }

  /** Tokens per sequence, as the threads' contexts have it. */
  get contextSize(): number {
    return this.#contextSize;
  }

  /** Jobs running now. */
  get running(): number {
    return this.#running.size;
  }

  /** Runs one job on a free sequence of some thread. Rejects with a {@link PoolError}. */
  run(jobId: string, task: GenerationTask, hooks: RunHooks): Promise<ThreadResult> {
    if (this.#closing) return Promise.reject(new InternalError("the model pool is closing"));
    if (hooks.signal.aborted) return Promise.resolve(cancelledBeforeStart);
    const { port1, port2 } = new MessageChannel();
    let threadRun: Promise<unknown> = Promise.resolve();
    const result = new Promise<ThreadResult>((resolve, reject) => {
      port1.on("message", (message: ThreadToMainMessage) => {
        if (message.type === "delta") {
          hooks.onText(message.text);
          return;
        }
        if (message.type === "started") {
          hooks.onStarted?.(message.threadId, message.sequencesInUse);
          return;
        }
        port1.close();
        if (message.type === "end") resolve(message.result);
        else reject(fromErrorInfo(message.error));
      });
      const abort = () => port1.postMessage({ type: "abort" } satisfies MainToThreadMessage);
      hooks.signal.addEventListener("abort", abort, { once: true });
      const threadTask: ThreadTask = { jobId, task, port: port2 };
      threadRun = this.#piscina
        .run(threadTask, { transferList: [port2] })
        .catch((error: unknown) => {
          port1.close();
          this.#log.error("model thread task failed", {
            model: this.name,
            jobId,
            error: error instanceof Error ? error.name : "unknown",
          });
          reject(new InternalError("the model thread running this job failed"));
        });
    });
    // A job is over for the pool when its port said so *and* piscina saw the task return.
    const tracked = Promise.allSettled([result, threadRun]);
    this.#running.add(tracked);
    void tracked.then(() => this.#running.delete(tracked));
    return result;
  }

  /**
   * Waits for running jobs to end, then stops the threads. Callers stop intake first and abort
   * what must not be waited for; terminating a thread mid-generation would abort the process.
   */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      await Promise.allSettled([...this.#running]);
      await this.#piscina.destroy();
    })();
    return this.#closing;
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}

const cancelledBeforeStart: ThreadResult = Object.freeze({
  finishReason: "cancelled",
  promptTokens: 0,
  completionTokens: 0,
});

function fromErrorInfo(info: ErrorInfo): PoolError {
  return new PoolError(info.code, info.message);
}

function waitForThreads(piscina: Piscina, options: ModelPoolOptions): Promise<number> {
  return new Promise((resolve, reject) => {
    let loaded = 0;
    const onMessage = (message: ThreadLoadReport) => {
      if (message?.modelName !== options.model.name) return;
      if (message.type === "model-load-failed") {
        cleanup();
        reject(
          new ModelLoadError(
            `model "${options.model.name}" could not be loaded from ${options.model.path}: ${message.message}`,
          ),
        );
        return;
      }
      loaded += 1;
      options.log.info("model thread ready", {
        model: options.model.name,
        thread: message.threadId,
        contextSize: message.contextSize,
      });
      if (loaded === options.threads) {
        cleanup();
        resolve(message.contextSize);
      }
    };
    const onError = (error: Error) => {
      cleanup();
      reject(
        new ModelLoadError(`a thread of model "${options.model.name}" crashed while loading`, {
          cause: error,
        }),
      );
    };
    const cleanup = () => {
      piscina.off("message", onMessage);
      piscina.off("error", onError);
    };
    piscina.on("message", onMessage);
    piscina.on("error", onError);
  });
}
