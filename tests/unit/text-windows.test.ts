/**
 * Delta coalescing in the model thread: a job's first piece goes out at once, later pieces at most
 * once per window (by the shared timer, not only at the end), `flush` sends what waits at once, and
 * the windows of jobs generating together are flushed together.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { TextWindows } from "../../gpu-worker/thread/text-windows.js";
import { waitFor } from "../support/wait-for.js";

function recorder() {
  const sent: { text: string; at: number }[] = [];
  return { sent, send: (text: string) => sent.push({ text, at: performance.now() }) };
}

describe("TextWindows", () => {
  it("sends the first piece at once and the rest after the window, without a flush", async () => {
    const windowMs = 50;
    const { sent, send } = recorder();
    const window = new TextWindows(windowMs).open(send);
    const startedAt = performance.now();
    const pieces = Array.from({ length: 100 }, (_, i) => `w${i};`);
    for (const piece of pieces) window.push(piece);
    assert.deepEqual(
      sent.map((s) => s.text),
      [pieces[0]],
      "the first piece went out during push",
    );
    await waitFor(() => sent.length >= 2, 2000, "the coalesced piece");
    assert.equal(sent[1]?.text, pieces.slice(1).join(""));
    // The shared timer may send up to half a window early, to align jobs.
    assert.ok((sent[1]?.at ?? 0) - startedAt >= windowMs / 2 - 5, "the window was kept");
  });

  it("flush sends what waits at once, and nothing twice", () => {
    const { sent, send } = recorder();
    const window = new TextWindows(10_000).open(send);
    window.push("a");
    window.push("b");
    window.push("c");
    window.flush();
    window.flush();
    assert.deepEqual(
      sent.map((s) => s.text),
      ["a", "bc"],
    );
  });

  it("a window of 0 sends every piece", () => {
    const { sent, send } = recorder();
    const window = new TextWindows(0).open(send);
    for (const piece of ["x", "y", "z"]) window.push(piece);
    assert.deepEqual(
      sent.map((s) => s.text),
      ["x", "y", "z"],
    );
  });

  it("flushes the windows of jobs generating together in the same turn", async () => {
    // A long window: b starts "10 ms" after a, and a loaded machine may make that 100 ms; the
    // shared timer takes windows ending within half a window (here 200 ms).
    const windows = new TextWindows(400);
    const a = recorder();
    const b = recorder();
    const first = windows.open(a.send);
    const second = windows.open(b.send);
    first.push("a0");
    await sleep(10);
    second.push("b0");
    first.push("a1");
    second.push("b1");
    await waitFor(() => a.sent.length >= 2 && b.sent.length >= 2, 2000, "both windows");
    const aAt = a.sent[1]?.at ?? 0;
    const bAt = b.sent[1]?.at ?? 0;
    // b's window ends after a's: it went out with a's, in the same timer turn, before its own.
    assert.ok(Math.abs(aAt - bAt) < 5, `${aAt} vs ${bAt}`);
    assert.ok(bAt < (b.sent[0]?.at ?? 0) + 400, "b was flushed early, with a");
  });
});
