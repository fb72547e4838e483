/**
 * The signal of one call (an HTTP request, say): it aborts with a `TimeoutError` after
 * `timeoutMs`, or with `outer`'s reason when `outer` aborts. Call `done()` when the call is over:
 * it clears the timer and unhooks the call from `outer`.
 *
 * Not `AbortSignal.any([AbortSignal.timeout(…), outer])`: Node keeps a composite signal that has
 * an abort listener (fetch adds one) reachable until it aborts, and with a long-lived `outer` (a
 * process's shutdown signal) every finished call stayed in the heap.
 */
export function callSignal(
  timeoutMs: number,
  outer?: AbortSignal,
): { signal: AbortSignal; done: () => void } {
  const controller = new AbortController();
  const timer = setTimeout(() => {
    const error = new Error(`no answer within ${timeoutMs} ms`);
    error.name = "TimeoutError";
    controller.abort(error);
  }, timeoutMs);
  const onAbort = () => controller.abort(outer?.reason);
  outer?.addEventListener("abort", onAbort, { once: true });
  if (outer?.aborted) onAbort();
  return {
    signal: controller.signal,
    done: () => {
      clearTimeout(timer);
      outer?.removeEventListener("abort", onAbort);
    },
  };
}
