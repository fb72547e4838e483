import { backoffDelayMs } from "../../shared/process/backoff.js";

/**
 * How `npm start` spaces the restarts of a part that keeps stopping: 1 s, 2 s, 4 s … 30 s, and
 * from 1 s again once the part has run stably.
 */
export interface RestartBackoff {
  /** The wait before the first restart, in ms. */
  readonly firstMs: number;
  /** The longest wait, in ms: each restart in a row doubles the wait up to this. */
  readonly maxMs: number;
  /**
   * How long a part must have run after it started, in ms, for its next stop to count as a first
   * one again (the wait starts over at `firstMs`).
   */
  readonly stableMs: number;
}

/** `npm start`'s backoff. */
export const restartBackoff: RestartBackoff = Object.freeze({
  firstMs: 1000,
  maxMs: 30_000,
  stableMs: 60_000,
});

/** The wait before restart number `restart` in a row (1 = the first), in ms. */
export function restartDelayMs(restart: number, backoff = restartBackoff): number {
  return backoffDelayMs(restart - 1, backoff.firstMs, backoff.maxMs);
}
