/**
 * How the client meets a pool that refuses a job for overload (HTTP 429 `QUEUE_FULL`, 503
 * `MODEL_UNAVAILABLE` or `REDIS_UNAVAILABLE`, or a 429/503 of any proxy in between): nothing was
 * queued, so the same request is sent again after the `Retry-After` the answer names, a bounded
 * number of times.
 */
export interface BusyRetryPolicy {
  /** Times a refused job is sent again. 0: none (the refusal is returned at once). */
  retries: number;
  /** Told before each wait, e.g. to show it on stderr. Never given any request data. */
  onWait?: ((wait: BusyWait) => void) | undefined;
}

/** One wait before sending a refused job again. */
export interface BusyWait {
  /** The refusal's HTTP status (429 or 503). */
  status: number;
  /** The pool's error code (`QUEUE_FULL`, ...), when its answer named one. */
  code: string | undefined;
  /** Seconds to wait: the answer's `Retry-After`, else a doubling default. */
  seconds: number;
  /** 1 for the first retry. */
  attempt: number;
  retries: number;
}

/** Default retries of a refused job (`--retries`). */
export const defaultBusyRetries = 3;
/** The longest wait the client takes from one `Retry-After`, in seconds (the pool's own cap). */
const maxRetryAfterSeconds = 300;

/** Whether an HTTP status means "refused for overload; nothing was done". */
export function isBusyStatus(status: number): boolean {
  return status === 429 || status === 503;
}

/**
 * Seconds from a `Retry-After` header (delta-seconds or an HTTP date), within
 * 0..{@link maxRetryAfterSeconds}; `undefined` when absent or unreadable.
 */
export function parseRetryAfter(header: string | null, now = Date.now()): number | undefined {
  if (header === null) return undefined;
  const text = header.trim();
  let seconds: number;
  if (/^\d+$/.test(text)) seconds = Number(text);
  else {
    const at = Date.parse(text);
    if (Number.isNaN(at)) return undefined;
    seconds = Math.ceil((at - now) / 1000);
  }
  return Math.min(maxRetryAfterSeconds, Math.max(0, seconds));
}

/** The wait when the answer named none: 1, 2, 4, ... s. */
export function fallbackWaitSeconds(attempt: number): number {
  return Math.min(maxRetryAfterSeconds, 2 ** (attempt - 1));
}
