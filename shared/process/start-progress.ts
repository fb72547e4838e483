import type { Logger } from "../log.js";

/**
 * Says which step a long start is on: a start that takes more than `everyMs` logs the step it is
 * waiting for, and again every `everyMs` until it ends (a download or a big model's load shows its
 * own progress too; a start stuck elsewhere would otherwise say nothing at all).
 */
export class StartProgress {
  readonly #log: Logger;
  readonly #startedAt = performance.now();
  #step: string;
  #stepAt = performance.now();
  #timer: NodeJS.Timeout | undefined;

  constructor(log: Logger, firstStep: string, everyMs = 30_000) {
    this.#log = log;
    this.#step = firstStep;
    this.#timer = setInterval(() => this.#report(), everyMs);
    this.#timer.unref();
  }

  /** The start goes on to `name`. */
  step(name: string): void {
    this.#step = name;
    this.#stepAt = performance.now();
  }

  /** The start is over (ready or failed). Idempotent. */
  end(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
  }

  #report(): void {
    const now = performance.now();
    this.#log.warn("still starting", {
      step: this.#step,
      stepSeconds: Math.round((now - this.#stepAt) / 1000),
      startSeconds: Math.round((now - this.#startedAt) / 1000),
    });
  }
}
