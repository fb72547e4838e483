/**
 * The jobs of a model pool waiting for free sequences, in order of arrival: a job with `n` choices
 * needs `n` sequences of one thread, and waits until some thread has them (the first waiting job
 * goes first: a large one is not passed by smaller ones for ever). Also counts the sequences the
 * pool's jobs take beyond one each, for the queue worker, which takes that many fewer jobs.
 */
export class SequenceQueue {
  readonly #fits: (need: number) => boolean;
  readonly #waiting: { need: number; go: () => void }[] = [];
  #extra = 0;
  #onExtra: ((extra: number) => void) | undefined;

  /** `fits(need)`: whether some thread has `need` sequences free now. */
  constructor(fits: (need: number) => boolean) {
    this.#fits = fits;
  }

  /** Whether a job needing `need` sequences may start now (none waits before it). */
  canStart(need: number): boolean {
    return this.#waiting.length === 0 && this.#fits(need);
  }

  /**
   * Queues a job: `go` is called when it may start; an abort of `signal` first takes it off the
   * queue and calls `cancelled` instead.
   */
  wait(need: number, signal: AbortSignal, go: () => void, cancelled: () => void): void {
    const waiter = {
      need,
      go: () => {
        signal.removeEventListener("abort", onAbort);
        go();
      },
    };
    const onAbort = () => {
      this.#waiting.splice(this.#waiting.indexOf(waiter), 1);
      cancelled();
      // A waiting job that needed many sequences may have held back smaller ones.
      this.startWaiting();
    };
    signal.addEventListener("abort", onAbort, { once: true });
    this.#waiting.push(waiter);
  }

  /** Starts waiting jobs, in order, while the first of them fits (call when sequences free up). */
  startWaiting(): void {
    while (this.#waiting.length > 0 && this.#fits(this.#waiting[0]?.need ?? 1)) {
      this.#waiting.shift()?.go();
    }
  }

  /** Counts a job's extra sequences (`n - 1`) while `running` runs. */
  holdExtra(extra: number, running: Promise<unknown>): void {
    this.#addExtra(extra);
    const done = () => this.#addExtra(-extra);
    running.then(done, done);
  }

  /** Tells `listener` of the extra sequences taken, whenever they change. */
  onExtra(listener: (extra: number) => void): void {
    this.#onExtra = listener;
  }

  #addExtra(delta: number): void {
    this.#extra += delta;
    this.#onExtra?.(this.#extra);
  }
}
