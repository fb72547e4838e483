import type { Logger } from "../../shared/log.js";
import { redisAnswerWithin } from "../../shared/process/deadline.js";
import type { ModelRegistryReader } from "../registry/model-registry-reader.js";

export interface FatalWatchOptions {
  registry: ModelRegistryReader;
  /** The models a live gpu-worker must serve. */
  models: readonly string[];
  /** A fault lasting this long is fatal, in ms (`JOB_LOCK_MS`: how long a lost job is waited for). */
  graceMs: number;
  /** How often to look, in ms. */
  everyMs?: number;
  /** Called once, with a reason fit for a log line and an error message. */
  onFatal: (reason: string) => void;
  log: Logger;
}

/**
 * Notices faults this worker cannot survive: Redis not answering, or no gpu-worker serving a
 * model, for longer than the grace period. Start it once the gpu-workers serve every model. A
 * RunPod worker then asks the platform to replace it (`stopPod`) instead of holding jobs that can
 * never run.
 */
export class FatalWatch {
  readonly #options: FatalWatchOptions;
  #timer: NodeJS.Timeout | undefined;
  #faultSince: number | undefined;
  #fired = false;
  #checking = false;
  #closed = false;

  constructor(options: FatalWatchOptions) {
    this.#options = options;
  }

  start(): void {
    if (this.#closed) return;
    const every = this.#options.everyMs ?? Math.min(5000, Math.max(250, this.#options.graceMs / 4));
    this.#timer ??= setInterval(() => void this.#check(), every);
    this.#timer.unref();
  }

  async #check(): Promise<void> {
    if (this.#checking || this.#fired) return;
    this.#checking = true;
    try {
      const fault = await this.#fault();
      const now = performance.now();
      if (fault === undefined) {
        this.#faultSince = undefined;
        return;
      }
      this.#faultSince ??= now;
      if (now - this.#faultSince >= this.#options.graceMs) {
        this.#fired = true;
        this.close();
        this.#options.log.error("fatal: the worker cannot go on", { reason: fault });
        this.#options.onFatal(fault);
      }
    } finally {
      this.#checking = false;
    }
  }

  async #fault(): Promise<string | undefined> {
    let serving: Awaited<ReturnType<ModelRegistryReader["read"]>>;
    try {
      serving = await redisAnswerWithin(this.#options.registry.read(this.#options.models), 5000);
    } catch {
      return "Redis does not answer";
    }
    const missing = this.#options.models.filter(
      (model) => (serving.get(model)?.state ?? "unavailable") === "unavailable",
    );
    if (missing.length === 0) return undefined;
    return `no gpu-worker serves model(s) ${missing.join(", ")}`;
  }

  close(): void {
    this.#closed = true;
    clearInterval(this.#timer);
  }
}
