import { Piscina } from "piscina";
import type { ThreadBackendOptions, UnloadTask } from "../../shared/protocol/index.js";
import type { EstimateTask } from "../memory/estimate-messages.js";
import { threadEntryPath } from "./thread-entry-path.js";

/** Most sequences a thread may run (a model's `sequences`): the pool itself keeps to its own. */
const maxSequences = 256;

/**
 * Model threads started ahead of need: each a one-thread piscina pool whose thread has started
 * its backend (node-llama-cpp, llama.cpp's backend) and waits for a model. A model's load takes one
 * instead of starting a thread: a cold tiny model's first token came in ~100 ms instead of ~1 s
 * on the CPU here (node-llama-cpp's import and `getLlama` are most of a thread's start); the
 * gpu-worker keeps `count` of them, starting another as one is taken; a thread whose model is
 * unloaded is taken back instead when spares are short (a swap of models then starts no thread).
 * Each spare holds its backend's memory (on a GPU, its device context) while it waits.
 */
export class ThreadSpares {
  readonly #count: number;
  readonly #backend: ThreadBackendOptions;
  readonly #ready: Piscina[] = [];
  #closed = false;

  constructor(options: { count: number; backend: ThreadBackendOptions }) {
    this.#count = options.count;
    this.#backend = options.backend;
    for (let i = 0; i < this.#count; i += 1) this.#ready.push(this.#start());
  }

  /** Spares started and not yet taken. */
  get size(): number {
    return this.#ready.length;
  }

  /** How many it keeps. */
  get count(): number {
    return this.#count;
  }

  /**
   * A started thread if there is one (another starts in its place while spares are short), else
   * one starting now.
   */
  take(): Piscina {
    const spare = this.#ready.shift() ?? this.#start();
    if (!this.#closed && this.#ready.length < this.#count) this.#ready.push(this.#start());
    return spare;
  }

  /**
   * Takes back a thread whose model was unloaded (its backend still up): at most one beyond
   * `count`, for the load that follows a swap; whether it did (else the caller stops the thread).
   * Taken first: it is started already.
   */
  giveBack(thread: Piscina): boolean {
    if (this.#closed || this.#ready.length > this.#count) return false;
    this.#ready.unshift(thread);
    return true;
  }

  /**
   * Runs `task` on a started spare (one starts if none waits), which then waits again; a spare
   * beyond `count` (with `count` 0, or once the spares are closed) is stopped after it. The
   * memory plan's estimate runs so, on the backend the first load then takes.
   */
  async runOnSpare(task: EstimateTask): Promise<unknown> {
    const spare = this.#ready.shift() ?? this.#start();
    try {
      return await spare.run(task);
    } finally {
      if (!this.#closed && this.#ready.length < this.#count) this.#ready.unshift(spare);
      else await stopSpare(spare);
    }
  }

  #start(): Piscina {
    return new Piscina({
      filename: threadEntryPath(),
      minThreads: 1,
      maxThreads: 1,
      concurrentTasksPerWorker: maxSequences,
      idleTimeout: Number.POSITIVE_INFINITY,
      atomics: "disabled",
      workerData: this.#backend,
    });
  }

  /**
   * Stops the spares (idempotent). Each first lets go of its backend, its start awaited: a thread
   * terminated while node-llama-cpp starts or holds its backend can abort the whole process
   * ("terminate called after throwing an instance of 'Napi::Error'", seen once when a stack was
   * stopped a second after a spare had been started in place of a taken one).
   */
  async close(): Promise<void> {
    this.#closed = true;
    await Promise.all(this.#ready.splice(0).map(stopSpare));
  }
}

/** Lets go of the spare's backend (its start awaited), then stops its thread. */
async function stopSpare(spare: Piscina): Promise<void> {
  const unload: UnloadTask = { kind: "unload", keepBackend: false };
  await spare.run(unload).catch(() => {});
  await spare.destroy();
}
