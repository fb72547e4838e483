/**
 * Delta coalescing in the model thread: a job's first piece goes out at once, later pieces at most
 * once per window (by the shared timer, not only at the end), `flush` sends what waits at once, and
 * the windows of jobs generating together are flushed together.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { maxScaledWindowMs, TextWindows } from "../../gpu-worker/thread/text-windows.js";
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

  it("grows the window with the jobs open on the thread, up to its cap, and back", () => {
    const windows = new TextWindows(20);
    const noop = () => {};
    assert.equal(windows.windowMs, 20, "no job: the configured window");
    const jobs = Array.from({ length: 4 }, () => windows.open(noop));
    assert.equal(windows.windowMs, 80, "four jobs: four windows");
    const more = Array.from({ length: 60 }, () => windows.open(noop));
    assert.equal(windows.windowMs, maxScaledWindowMs, "many jobs: capped");
    for (const window of [...jobs, ...more]) window.close();
    jobs[0]?.close(); // closing twice counts once
    assert.equal(windows.windowMs, 20);
    const one = windows.open(noop);
    assert.equal(windows.windowMs, 20, "one job streams as finely as configured");
    one.close();
    assert.equal(new TextWindows(0).windowMs, 0, "0 still sends every piece");
    assert.equal(new TextWindows(1000).windowMs, 1000, "a window longer than the cap is kept");
  });

  it("a job's later pieces wait the grown window when others generate beside it", async () => {
    const windows = new TextWindows(40);
    const others = Array.from({ length: 3 }, () => windows.open(() => {}));
    const { sent, send } = recorder();
    const window = windows.open(send);
    window.push("a");
    const pushedAt = performance.now();
    window.push("b");
    await waitFor(() => sent.length >= 2, 2000, "the coalesced piece");
    // Four jobs: a 160 ms window (the shared timer may fire up to half a window early).
    assert.ok((sent[1]?.at ?? 0) - pushedAt >= 80 - 5, `${(sent[1]?.at ?? 0) - pushedAt} ms`);
    window.close();
    for (const other of others) other.close();
  });
});
