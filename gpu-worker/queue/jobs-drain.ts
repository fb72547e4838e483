import type { Logger } from "../../shared/log.js";
import type { Cancellations } from "./cancellations.js";

/**
 * What a stopping gpu-worker says about its running jobs: at the start of the drain how many it
 * waits for and for how long at most (`SHUTDOWN_TIMEOUT_MS`), then either that they all ended or
 * that it cancels those left. Silent when nothing ran.
 */
export class JobsDrain {
  readonly #cancellations: Cancellations;
  readonly #log: Logger;
  readonly #startedAt = performance.now();
  readonly #waitingFor: number;
  #cancelled = 0;

  constructor(cancellations: Cancellations, shutdownTimeoutMs: number, log: Logger) {
    this.#cancellations = cancellations;
    this.#log = log;
    this.#waitingFor = cancellations.running;
    if (this.#waitingFor > 0) {
      log.info("waiting for running jobs to end before stopping", {
        jobs: this.#waitingFor,
        shutdownTimeoutMs,
      });
    }
  }

  /** Cancels every job still running (each model's drain calls it at the deadline). */
  abortAll(): void {
    const left = this.#cancellations.running;
    if (left > 0 && this.#cancelled === 0) {
      this.#cancelled = left;
      this.#log.warn("cancelling the jobs still running at SHUTDOWN_TIMEOUT_MS", {
        jobs: left,
        waitedMs: this.#waitedMs(),
      });
    }
    this.#cancellations.cancelAll();
  }

  /** The drain is over: the jobs' generations have ended. */
  ended(): void {
    if (this.#waitingFor === 0 || this.#cancelled > 0) return;
    this.#log.info("every running job ended", {
      jobs: this.#waitingFor,
      waitedMs: this.#waitedMs(),
    });
  }

  #waitedMs(): number {
    return Math.round(performance.now() - this.#startedAt);
  }
}
