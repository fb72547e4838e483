import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { callSignal } from "../../shared/process/call-signal.js";
import { holdsFor } from "../support/wait-for.js";

describe("callSignal", () => {
  it("aborts with a TimeoutError once its time is up", async () => {
    const call = callSignal(20);
    await new Promise((resolve) => call.signal.addEventListener("abort", resolve, { once: true }));
    assert.equal((call.signal.reason as Error).name, "TimeoutError");
    call.done();
  });

  it("aborts with the outer signal's reason, also when that signal had aborted already", () => {
    const outer = new AbortController();
    const call = callSignal(60_000, outer.signal);
    outer.abort(new Error("shutting down"));
    assert.equal((call.signal.reason as Error).message, "shutting down");
    call.done();
    const late = callSignal(60_000, outer.signal);
    assert.equal(late.signal.aborted, true);
    late.done();
  });

  it("is unhooked from the outer signal and its timer once done", async () => {
    const outer = new AbortController();
    let listeners = 0;
    const add = outer.signal.addEventListener.bind(outer.signal);
    const remove = outer.signal.removeEventListener.bind(outer.signal);
    outer.signal.addEventListener = (...args: Parameters<typeof add>) => {
      listeners += 1;
      add(...args);
    };
    outer.signal.removeEventListener = (...args: Parameters<typeof remove>) => {
      listeners -= 1;
      remove(...args);
    };
    const calls = Array.from({ length: 100 }, () => callSignal(30, outer.signal));
    assert.equal(listeners, 100);
    for (const call of calls) call.done();
    assert.equal(listeners, 0);
    // Past the calls' own 30 ms timeout: a finished call's timer must not fire either.
    await holdsFor(
      () => calls.every((call) => !call.signal.aborted),
      60,
      "no finished call is aborted by its timeout",
    );
    outer.abort();
    assert.ok(
      calls.every((call) => !call.signal.aborted),
      "a finished call was aborted later",
    );
  });
});
