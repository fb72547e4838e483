/** What ends a {@link sleep} early, and how. */
export interface SleepAbort {
  signal: AbortSignal | undefined;
  /**
   * What the sleep does when `signal` aborts first (or has already aborted):
   * - `"reject"`: rejects with the signal's reason. For a wait inside a call that the abort
   *   cancels (a retry's delay): the caller sees the abort as it would from the call itself.
   * - `"resolve"`: resolves at once. For a pause in a loop that looks at its signal next (a poll
   *   loop that a `close()` ends).
   */
  onAbort: "reject" | "resolve";
}

/** Waits `ms` (nothing when ≤ 0); with `abort`, its signal ends the wait as `onAbort` says. */
export function sleep(ms: number, abort?: SleepAbort): Promise<void> {
  const signal = abort?.signal;
  const rejects = abort?.onAbort === "reject";
  if (signal?.aborted) return rejects ? Promise.reject(signal.reason) : Promise.resolve();
  if (ms <= 0) return Promise.resolve();
  return new Promise((resolve, reject) => {
    const onAbort = () => {
      clearTimeout(timer);
      if (rejects) reject(signal?.reason);
      else resolve();
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}
