/**
 * Puts one job's numbered replies back in order. Replies arrive on pub/sub (fast, may lose some)
 * and, on request, from the job's stream (complete); either path may repeat the other. Anything
 * below the next expected number is a duplicate; anything above it waits, and reports a gap.
 */
export class ReplySequencer<T> {
  #next: number;
  readonly #waiting = new Map<number, T>();

  /** `first`: the number of the first reply expected (a continuation's: after those delivered). */
  constructor(first = 0) {
    this.#next = first;
  }

  /** The number of the next reply to deliver. */
  get next(): number {
    return this.#next;
  }

  /** Whether replies are waiting behind a missing one. */
  get hasGap(): boolean {
    return this.#waiting.size > 0;
  }

  /** Offers reply `seq`; returns the replies now deliverable, in order (possibly none). */
  offer(seq: number, reply: T): T[] {
    if (seq < this.#next || this.#waiting.has(seq)) return [];
    if (seq > this.#next) {
      this.#waiting.set(seq, reply);
      return [];
    }
    const ready = [reply];
    this.#next += 1;
    for (
      let queued = this.#waiting.get(this.#next);
      queued !== undefined;
      queued = this.#waiting.get(this.#next)
    ) {
      this.#waiting.delete(this.#next);
      ready.push(queued);
      this.#next += 1;
    }
    return ready;
  }
}
