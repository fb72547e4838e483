/** Growing waits after consecutive failures: 1 s, 2 s, 4 s … 30 s by default. */
export interface Backoff {
  /** The wait before the next attempt, in ms; each call doubles it up to the cap. */
  next(): number;
  /** A success: the next failure starts over. */
  reset(): void;
}

/** The wait after `failures` failures in a row before this one (0: the first wait), in ms. */
export function backoffDelayMs(failures: number, firstMs = 1000, maxMs = 30_000): number {
  return Math.min(maxMs, firstMs * 2 ** Math.max(0, failures));
}

export function createBackoff(firstMs = 1000, maxMs = 30_000): Backoff {
  let failures = 0;
  return {
    next() {
      const wait = backoffDelayMs(failures, firstMs, maxMs);
      failures += 1;
      return wait;
    },
    reset() {
      failures = 0;
    },
  };
}
