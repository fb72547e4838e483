import { MessageChannel } from "node:worker_threads";
import type { Piscina } from "piscina";
import type { GpuChoice } from "../../shared/config/index.js";
import {
  type ErrorInfo,
  InternalError,
  InvalidRequestError,
  ModelLoadError,
  PoolError,
} from "../../shared/errors/index.js";
import type { Logger } from "../../shared/log.js";
import type {
  Continuation,
  DeltaExtras,
  GenerationTask,
  JobTask,
  LoadTask,
  MainToThreadMessage,
  ModelLoadOptions,
  ThreadLoadReport,
  ThreadParentMessage,
  ThreadResult,
  ThreadStatsReport,
  ThreadToMainMessage,
  UnloadTask,
} from "../../shared/protocol/index.js";
import { chooseLane, type Lane, rememberHeld } from "./lanes.js";
import { heldDigests, inputDigests } from "./prefix-affinity.js";
import { SequenceQueue } from "./sequence-queue.js";
import { ThreadSpares } from "./thread-spares.js";

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
  /** `PROMPT_CACHE`: sequences keep their tokens between jobs (default true). */
  promptCache?: boolean;
  /** The model's `embeddings` setting: each thread also holds an embedding context. */
  embeddings?: boolean;
  /** `DELTA_WINDOW_MS`: the threads coalesce text within this window (default 0: every piece). */
  deltaWindowMs?: number;
  /** Where its threads come from: started ones, waiting for a model (default: new ones). */
  spares?: ThreadSpares;
  log: Logger;
}

export interface RunHooks {
  /** Aborting cancels generation inside the thread (the thread itself lives on). */
  signal: AbortSignal;
  /** A piece of text; `extras` names its choice (`n` > 1), holds its logprobs if asked, and the function-call pieces that follow it. */
  onText: (text: string, extras?: DeltaExtras) => void;
  /** The job got a context sequence in thread `threadId`, which now has `sequencesInUse` taken. */
  onStarted?: (threadId: number, sequencesInUse: number) => void;
  /** A continuation: the job goes on from these tokens of a lost attempt (`thread/continue.ts`). */
  continuation?: Continuation | undefined;
}

/**
 * One model's threads: `threads` threads that each load the model once and keep it
 * (`idleTimeout: Infinity`), each running up to `sequences` jobs at once on its context's
 * sequences, which keep their tokens between jobs (the prompt cache). Each thread is a one-thread
 * piscina pool of its own, so the pool decides where a job runs: on the thread whose sequences
 * already hold the longest prefix of its input (a chat's next turn goes back to the thread that
 * holds the conversation), else on the least busy one. The thread then picks the sequence.
 * Atomics are disabled: piscina's default parks an idle thread's event loop, which would stall the
 * message ports that carry text and cancellations.
 */
export class ModelPool {
  readonly name: string;
  /** Jobs the pool runs at once: threads × sequences. */
  readonly capacity: number;
  readonly #lanes: Lane[];
  readonly #sequences: number;
  readonly #promptCache: boolean;
  readonly #log: Logger;
  readonly #running = new Set<Promise<unknown>>();
  /** Where its threads go back when it closes, if spares are short. */
  #spares: ThreadSpares | undefined;
  /** Jobs waiting for free sequences (a job with `n` choices needs `n` of one thread). */
  readonly #queue = new SequenceQueue((need) =>
    this.#lanes.some((lane) => lane.running + need <= this.#sequences),
  );
  /** The model its threads hold: each job names it (a replacement thread loads it first). */
  readonly #load: ModelLoadOptions;
  #clock = 0;
  #contextSize = 0;
  #maxTokenBytes: number | undefined;
  #closing: Promise<void> | undefined;

  private constructor(lanes: Piscina[], options: ModelPoolOptions, load: ModelLoadOptions) {
    this.#load = load;
    this.#lanes = lanes.map((piscina) => ({
      piscina,
      running: 0,
      held: [],
      lastUsed: 0,
      stats: undefined,
    }));
    this.name = options.model.name;
    this.#sequences = options.sequences;
    this.capacity = options.threads * options.sequences;
    this.#promptCache = options.promptCache ?? true;
    this.#log = options.log;
  }

  /**
   * Takes its threads (started ones from `spares`, or new ones) and resolves once every one has
   * loaded the model and warmed it up.
   */
  static async start(options: ModelPoolOptions): Promise<ModelPool> {
    const load: ModelLoadOptions = {
      modelName: options.model.name,
      modelPath: options.model.path,
      contextSize: options.contextSize,
      sequences: options.sequences,
      llamaThreads: options.llamaThreads,
      vramCapBytes: options.vramCapBytes,
      promptCache: options.promptCache ?? true,
      ...(options.embeddings === true ? { embeddings: true } : {}),
    };
    const spares =
      options.spares ??
      new ThreadSpares({
        count: 0,
        backend: {
          gpu: options.gpu,
          gpuMemoryUtilization: options.gpuMemoryUtilization,
          deltaWindowMs: options.deltaWindowMs ?? 0,
        },
      });
    const lanes = Array.from({ length: options.threads }, () => spares.take());
    const recycle = options.spares;
    const pool = new ModelPool(lanes, options, load);
    pool.#spares = recycle;
    const loads = await Promise.allSettled(lanes.map((lane) => loadThread(lane, load, options)));
    const failed = loads.find((result) => result.status === "rejected");
    if (failed !== undefined) {
      await Promise.all(lanes.map((lane) => lane.destroy()));
      throw failed.reason;
    }
    const first = loads[0]?.status === "fulfilled" ? loads[0].value : undefined;
    pool.#contextSize = first?.contextSize ?? 0;
    pool.#maxTokenBytes = first?.maxTokenBytes;
    for (const lane of pool.#lanes) {
      lane.piscina.on("message", (message: ThreadParentMessage) => {
        if (message.type === "thread-stats") {
          lane.stats = message;
          return;
        }
        // A thread that died is replaced by piscina; its replacement reports here.
        if (message.type === "model-load-failed") {
          pool.#log.error("a replacement model thread failed to load", { model: pool.name });
        }
      });
      lane.piscina.on("error", (error: Error) => {
        pool.#log.error("model thread error", { model: pool.name, error: error.name });
      });
    }
    return pool;
  }

  /** Tokens per sequence, as the threads' contexts have it. */
  get contextSize(): number {
    return this.#contextSize;
  }

  /** The most text bytes one token of the model stands for; `undefined` when unknown. */
  get maxTokenBytes(): number | undefined {
    return this.#maxTokenBytes;
  }

  /** Jobs running now. */
  get running(): number {
    return this.#running.size;
  }

  /** Each thread's latest {@link ThreadStatsReport}; a thread that has not reported yet is left out. */
  get threadStats(): ThreadStatsReport[] {
    return this.#lanes.flatMap((lane) => (lane.stats === undefined ? [] : [lane.stats]));
  }

  /**
   * Tells `listener` how many sequences the pool's jobs (running or waiting) take beyond one each
   * (a job with `n` choices takes `n`), whenever that changes: the queue worker takes that many
   * fewer jobs.
   */
  onExtraSequences(listener: (extra: number) => void): void {
    this.#queue.onExtra(listener);
  }

  /**
   * Runs one job on a free sequence of some thread (a job with `n` choices on `n` sequences of one
   * thread); with too few free, the job waits (in order of arrival). Rejects with a
   * {@link PoolError}.
   */
  run(jobId: string, task: GenerationTask, hooks: RunHooks): Promise<ThreadResult> {
    if (this.#closing) return Promise.reject(new InternalError("the model pool is closing"));
    if (hooks.signal.aborted) return Promise.resolve(cancelledBeforeStart);
    const need = task.sampling.n ?? 1;
    if (need > this.#sequences) {
      return Promise.reject(
        new InvalidRequestError(
          `request.sampling_params.n: must be at most ${this.#sequences}, the sequences of one thread of model "${this.name}"`,
        ),
      );
    }
    const running = this.#queue.canStart(need)
      ? this.#start(jobId, task, hooks)
      : new Promise<ThreadResult>((resolve, reject) => {
          const go = () => {
            if (this.#closing) reject(new InternalError("the model pool is closing"));
            else this.#start(jobId, task, hooks).then(resolve, reject);
          };
          this.#queue.wait(need, hooks.signal, go, () => resolve(cancelledBeforeStart));
        });
    if (need > 1) this.#queue.holdExtra(need - 1, running);
    return running;
  }

  #start(jobId: string, task: GenerationTask, hooks: RunHooks): Promise<ThreadResult> {
    const need = task.sampling.n ?? 1;
    // Where the prompt cache is worth routing for, the thread's sequences are remembered by the
    // digests of what they hold (never the text itself).
    // An embeddings job counts as one of its lane's `running` jobs like a text job, though it
    // runs on the thread's embedding context and takes none of its text sequences: a thread
    // therefore never runs more jobs, of both kinds together, than it has sequences, and its text
    // jobs always find a free sequence. Embedding jobs of one thread take turns on its one
    // embedding sequence; they hold nothing worth routing by prefix.
    const routing = this.#promptCache && this.#lanes.length > 1 && task.input.kind !== "embed";
    const digests = routing ? inputDigests(task) : [];
    const { lane, matched } = chooseLane(this.#lanes, digests, need, this.#sequences);
    lane.running += need;
    this.#clock += 1;
    lane.lastUsed = this.#clock;
    let output = "";
    const { port1, port2 } = new MessageChannel();
    let threadRun: Promise<unknown> = Promise.resolve();
    // Unhooked when the job ends: the caller's signal may outlive the job.
    const abort = () => port1.postMessage({ type: "abort" } satisfies MainToThreadMessage);
    hooks.signal.addEventListener("abort", abort, { once: true });
    const result = new Promise<ThreadResult>((resolve, reject) => {
      port1.on("message", (message: ThreadToMainMessage) => {
        if (message.type === "delta") {
          // What choice 0 wrote is what its sequence holds (the prefix the pool routes by).
          if (routing && message.index === undefined) output += message.text;
          if (
            message.index === undefined &&
            message.logprobs === undefined &&
            message.tokens === undefined &&
            message.toolCalls === undefined
          ) {
            hooks.onText(message.text);
          } else {
            const { type: _type, text, ...extras } = message;
            hooks.onText(text, extras);
          }
          return;
        }
        if (message.type === "started") {
          hooks.onStarted?.(message.threadId, message.sequencesInUse);
          return;
        }
        port1.close();
        hooks.signal.removeEventListener("abort", abort);
        if (message.type === "end") resolve(message.result);
        else reject(fromErrorInfo(message.error));
      });

      const threadTask: JobTask = {
        kind: "job",
        jobId,
        task,
        port: port2,
        model: this.#load,
        ...(hooks.continuation === undefined ? {} : { continuation: hooks.continuation }),
      };
      threadRun = lane.piscina
        .run(threadTask, { transferList: [port2] })
        .catch((error: unknown) => {
          port1.close();
          hooks.signal.removeEventListener("abort", abort);
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
    void tracked.then(([ended]) => {
      this.#running.delete(tracked);
      lane.running -= need;
      this.#queue.startWaiting();
      if (routing) {
        rememberHeld(
          lane,
          matched,
          ended.status === "fulfilled" ? heldDigests(task, output) : [],
          this.#sequences,
        );
      }
    });
    return result;
  }

  /**
   * Waits for running jobs to end, then lets the threads go: each lets go of its model; then,
   * with `recycle` (a swap: another model loads next), it keeps its backend and goes back to the
   * spares, which start no thread for that load; else it lets go of its backend too (it then holds
   * no native memory) and is stopped, unless spares are short. Callers stop intake first and abort
   * what must not be waited for; terminating a thread mid-generation would abort the process.
   */
  close(options: { recycle?: boolean } = {}): Promise<void> {
    this.#closing ??= (async () => {
      await Promise.allSettled([...this.#running]);
      await Promise.allSettled(
        this.#lanes.map(async ({ piscina }) => {
          const spares = this.#spares;
          const keep =
            spares !== undefined && (options.recycle === true || spares.size < spares.count);
          const unload: UnloadTask = { kind: "unload", keepBackend: keep };
          await piscina.run(unload);
          piscina.removeAllListeners("message");
          piscina.removeAllListeners("error");
          if (!keep || spares?.giveBack(piscina) !== true) await piscina.destroy();
        }),
      );
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
  cachedTokens: 0,
  completionTokens: 0,
});

function fromErrorInfo(info: ErrorInfo): PoolError {
  return new PoolError(info.code, info.message);
}

/** Loads the model on a lane's thread; resolves with what the thread reported. */
async function loadThread(
  piscina: Piscina,
  load: ModelLoadOptions,
  options: ModelPoolOptions,
): Promise<{ contextSize: number; maxTokenBytes: number | undefined }> {
  const task: LoadTask = { kind: "load", model: load };
  let report: ThreadLoadReport | undefined;
  try {
    report = (await piscina.run(task)) as ThreadLoadReport | undefined;
  } catch (error) {
    throw new ModelLoadError(`a thread of model "${options.model.name}" crashed while loading`, {
      cause: error,
    });
  }
  if (report?.type !== "model-loaded") {
    throw new ModelLoadError(
      `model "${options.model.name}" could not be loaded from ${options.model.path}: ${report?.message ?? "no report"}`,
    );
  }
  options.log.info("model thread ready", {
    model: options.model.name,
    thread: report.threadId,
    contextSize: report.contextSize,
    warmUpMs: report.warmUpMs,
  });
  return { contextSize: report.contextSize, maxTokenBytes: report.maxTokenBytes };
}
