/** Growing waits after consecutive failures (the Python SDK has none): 1 s, 2 s, 4 s … 30 s. */
export interface Backoff {
  /** The wait before the next attempt, in ms; each call doubles it up to the cap. */
  next(): number;
  /** A success: the next failure starts over. */
  reset(): void;
}

export function createBackoff(firstMs = 1000, maxMs = 30_000): Backoff {
  let failures = 0;
  return {
    next() {
      const wait = Math.min(maxMs, firstMs * 2 ** failures);
      failures += 1;
      return wait;
    },
    reset() {
      failures = 0;
    },
  };
}
