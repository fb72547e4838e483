import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { once } from "node:events";
import { describe, it } from "node:test";
import { nativeStacks } from "../support/native-stacks.js";

const gdb = spawnSync("gdb", ["--version"]).status === 0;

describe("nativeStacks (what a test prints of a stack process that hangs)", () => {
  it("shows a process whose event loop is blocked, in the frame that blocks it", {
    skip: gdb ? false : "gdb is not installed",
  }, async (t) => {
    // Its main thread waits in Atomics.wait: a blocked event loop, as in a hung start.
    const child = spawn(process.execPath, [
      "-e",
      "console.log('blocked'); Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0);",
    ]);
    try {
      await once(child.stdout, "data");
      const stacks = await nativeStacks(child.pid ?? 0);
      if (/ptrace|not permitted/i.test(stacks) && stacks.startsWith("no native stacks")) {
        // A machine (a container without ptrace) where gdb may not attach: nothing to show.
        t.skip(`gdb may not attach here: ${stacks}`);
        return;
      }
      assert.match(stacks, /^Thread 1 /m);
      assert.match(stacks, /^#0 /m);
      assert.match(stacks, /Atomics|futex|Wait/i);
    } finally {
      child.kill("SIGKILL");
    }
  });

  it("says why where it has none", async () => {
    const stacks = await nativeStacks(2 ** 22 + 12345);
    assert.match(stacks, /^no native stacks of process \d+: /);
  });
});
