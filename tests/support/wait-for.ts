/**
 * Waiting in tests for a condition rather than sleeping a fixed time: the one wait module.
 * A wait ends as soon as what it waits for happens; an assertion over time ({@link holdsFor})
 * fails as soon as what should hold does not.
 */
import assert from "node:assert/strict";
import { setTimeout as sleep } from "node:timers/promises";

/**
 * Waits until `condition` holds, checking every `intervalMs` (default 2 ms; more for a condition
 * that costs a request); fails naming `what` after `timeoutMs`.
 */
export async function waitFor(
  condition: () => boolean | Promise<boolean>,
  timeoutMs: number,
  what: string,
  intervalMs = 2,
): Promise<void> {
  await waitForValue(
    async () => ((await condition()) ? true : undefined),
    timeoutMs,
    what,
    intervalMs,
  );
}

/**
 * Waits until `probe` returns something other than `undefined`, and returns it; checks every
 * `intervalMs` (default 2 ms) and fails naming `what` after `timeoutMs`.
 */
export async function waitForValue<T>(
  probe: () => T | undefined | Promise<T | undefined>,
  timeoutMs: number,
  what: string,
  intervalMs = 2,
): Promise<T> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (performance.now() > deadline) {
      // A starved process runs its timers before the I/O that waited (a child's output, a
      // reply): let that in, then look once more.
      await new Promise((resolve) => setImmediate(resolve));
      const late = await probe();
      if (late !== undefined) return late;
      assert.fail(`timed out waiting for ${what}`);
    }
    await sleep(intervalMs);
  }
}

/**
 * Asserts that `condition` holds throughout the next `ms`, checking every `intervalMs` (default
 * 2 ms) and failing, naming `what`, the first time it does not: for what must not happen, where
 * there is no event to wait for.
 */
export async function holdsFor(
  condition: () => boolean | Promise<boolean>,
  ms: number,
  what: string,
  intervalMs = 2,
): Promise<void> {
  const end = performance.now() + ms;
  for (;;) {
    if (!(await condition())) assert.fail(`no longer true: ${what}`);
    if (performance.now() >= end) return;
    await sleep(Math.min(intervalMs, Math.max(0, end - performance.now())));
  }
}

/**
 * Waits for the first line of `lines` (a log that grows) that passes `test`, and returns it; a
 * failure shows the whole log.
 */
export async function waitForLine(
  lines: readonly string[],
  test: (line: string) => boolean,
  timeoutMs: number,
  what: string,
): Promise<string> {
  try {
    return await waitForValue(() => lines.find(test), timeoutMs, what, 20);
  } catch (error) {
    assert.fail(`${(error as Error).message}; the log:\n${lines.join("\n")}`);
  }
}
