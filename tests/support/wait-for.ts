/** Waiting in tests for a condition rather than sleeping a fixed time. */
import assert from "node:assert/strict";
import { setTimeout as sleep } from "node:timers/promises";

/** Waits until `condition` holds, checking every 2 ms; fails naming `what` after `timeoutMs`. */
export async function waitFor(
  condition: () => boolean | Promise<boolean>,
  timeoutMs: number,
  what: string,
): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!(await condition())) {
    if (performance.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await sleep(2);
  }
}
