/**
 * The launcher's supervision of one part, on real (tiny) child processes with short waits: a part
 * that stops after it started is restarted with growing waits, the count starts over after a
 * stable run, a part whose first start fails is given up on, and `close()` stops it for good.
 */
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { after, afterEach, before, describe, it } from "node:test";
import { type PartExit, SupervisedPart } from "../../scripts/launcher/supervised-part.js";
import { createLogger } from "../../shared/log.js";
import { readyMessage } from "../../shared/process/ready-signal.js";
import { holdsFor, waitFor } from "../support/wait-for.js";

/**
 * A stand-in part: says it started (READY=1; then writes READY_FILE, if named, for the test to
 * see), runs RUN_MS, exits EXIT_CODE.
 */
const partScript = `
import { writeFileSync } from "node:fs";
if (process.env.READY === "1") {
  process.send(${JSON.stringify(readyMessage)}, () => {
    if (process.env.READY_FILE) writeFileSync(process.env.READY_FILE, "");
  });
}
setTimeout(() => process.exit(Number(process.env.EXIT_CODE)), Number(process.env.RUN_MS));
`;

describe("SupervisedPart", () => {
  let dir: string;
  let entry: string;

  before(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), "pool-supervised-part-"));
    entry = path.join(dir, "part.mjs");
    await writeFile(entry, partScript);
  });

  /** Every part a test made: closed after it, so a failed test leaves nothing restarting. */
  const parts: SupervisedPart[] = [];
  afterEach(async () => {
    await Promise.all(parts.splice(0).map((part) => part.close()));
  });

  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  function supervise(env: Record<string, string>, stableMs = 60_000) {
    const lines: Record<string, unknown>[] = [];
    const givenUp: { exit: PartExit; started: boolean }[] = [];
    const part = new SupervisedPart({
      name: "gpu-worker",
      entry,
      env: { PATH: process.env.PATH ?? "", ...env },
      restart: true,
      backoff: { firstMs: 20, maxMs: 80, stableMs },
      log: createLogger("start", {
        format: "json",
        write: (line) => lines.push(JSON.parse(line) as Record<string, unknown>),
      }),
      onGiveUp: (exit, started) => givenUp.push({ exit, started }),
    });
    parts.push(part);
    const crashes = () =>
      lines.filter((line) => line.message === "the gpu-worker stopped: restarting it");
    return { part, lines, givenUp, crashes };
  }

  it("restarts a part that stops after it started, doubling the wait up to the cap", async () => {
    const { part, givenUp, crashes } = supervise({ READY: "1", RUN_MS: "50", EXIT_CODE: "3" });
    part.start();
    await waitFor(() => crashes().length >= 5, 30_000, "five restarts");
    await part.close();
    const seen = crashes().slice(0, 5);
    assert.deepEqual(
      seen.map((line) => [line.restart, line.restartInMs, line.code, line.signal]),
      [
        [1, 20, 3, null],
        [2, 40, 3, null],
        [3, 80, 3, null],
        [4, 80, 3, null],
        [5, 80, 3, null],
      ],
    );
    assert.deepEqual(givenUp, []);
  });

  it("starts the count over after a stable run", async () => {
    const { part, crashes } = supervise({ READY: "1", RUN_MS: "300", EXIT_CODE: "1" }, 100);
    part.start();
    await waitFor(() => crashes().length >= 3, 30_000, "three restarts");
    await part.close();
    assert.deepEqual(
      crashes().map((line) => [line.restart, line.restartInMs]),
      crashes().map(() => [1, 20]),
    );
  });

  it("gives up on a part whose first start fails, without a restart", async () => {
    const { part, givenUp, crashes } = supervise({ READY: "0", RUN_MS: "10", EXIT_CODE: "2" });
    part.start();
    await waitFor(() => givenUp.length === 1, 30_000, "the give-up");
    assert.deepEqual(givenUp, [{ exit: { code: 2, signal: null }, started: false }]);
    await holdsFor(() => crashes().length === 0, 200, "no restart");
    assert.equal(crashes().length, 0);
    await part.close();
  });

  it("close() stops the running process for good, and is idempotent", async () => {
    const readyFile = path.join(dir, "close-ready");
    const { part, lines, givenUp } = supervise({
      READY: "1",
      READY_FILE: readyFile,
      RUN_MS: "60000",
      EXIT_CODE: "0",
    });
    part.start();
    // Running and started: a stop now would be restarted but for close().
    await waitFor(() => existsSync(readyFile), 30_000, "the part to say it started");
    const closing = part.close();
    assert.equal(part.close(), closing);
    await closing;
    await holdsFor(() => lines.length === 0 && givenUp.length === 0, 200, "no restart, no give-up");
    assert.deepEqual(lines, []);
    assert.deepEqual(givenUp, []);
  });
});
