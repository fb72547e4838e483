/** Weight of the newest run in the mean: about the last ten jobs count. */
const alpha = 0.2;
/** Assumed for a model until one of its jobs completed here. */
const defaultServiceMs = 1000;
/** Bounds of `Retry-After`, in seconds. */
const retryAfterRange = { min: 1, max: 300 } as const;

/**
 * Each model's recent service time, as this orchestrator saw it: an exponentially weighted mean
 * of its completed jobs' run times (gpu-worker start to final reply), kept in memory, so that
 * estimating a wait needs no Redis round trip.
 */
export class ServiceTimes {
  readonly #meanMs = new Map<string, number>();

  /** A job of `model` completed after running `runMs`. */
  observe(model: string, runMs: number): void {
    if (!Number.isFinite(runMs) || runMs < 0) return;
    const mean = this.#meanMs.get(model);
    this.#meanMs.set(model, mean === undefined ? runMs : mean + alpha * (runMs - mean));
  }

  /** The model's mean run time, in ms ({@link defaultServiceMs} before its first job). */
  meanMs(model: string): number {
    return this.#meanMs.get(model) ?? defaultServiceMs;
  }

  /**
   * Seconds until `depth` waiting jobs of `model` should have drained on `slots` sequences:
   * `ceil(depth × mean run time / slots)`, clamped to 1..300.
   */
  retryAfterSeconds(model: string, depth: number, slots: number): number {
    const seconds = Math.ceil((depth * this.meanMs(model)) / 1000 / Math.max(1, slots));
    return clampRetryAfter(seconds);
  }
}

/** A `Retry-After` in whole seconds within {@link retryAfterRange}. */
export function clampRetryAfter(seconds: number): number {
  if (!Number.isFinite(seconds)) return retryAfterRange.max;
  return Math.min(retryAfterRange.max, Math.max(retryAfterRange.min, Math.ceil(seconds)));
}
