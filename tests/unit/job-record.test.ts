import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { JobRecord } from "../../orchestrator/jobs/job-record.js";
import { JobTable } from "../../orchestrator/jobs/job-table.js";
import { type FinalChunk, isTerminalStatus } from "../../shared/protocol/index.js";

const failure = { code: "INTERNAL" as const, message: "lost" };

function final(seq: number): FinalChunk {
  return {
    seq,
    done: true,
    finish_reason: "stop",
    usage: { prompt_tokens: 1, completion_tokens: seq },
    timings: { queue_ms: 0, load_ms: 0, ttft_ms: 0, total_ms: 0 },
  };
}

describe("JobRecord status", () => {
  it("starts IN_QUEUE, goes IN_PROGRESS when started, then COMPLETED", () => {
    const record = new JobRecord("j1");
    assert.equal(record.status, "IN_QUEUE");
    assert.equal(record.terminal, false);
    record.markStarted();
    assert.equal(record.status, "IN_PROGRESS");
    assert.ok(record.startedAt !== undefined);
    record.complete();
    assert.equal(record.status, "COMPLETED");
    assert.equal(record.terminal, true);
    assert.ok(record.endedAt !== undefined && record.endedAt >= record.startedAt);
  });

  it("goes IN_PROGRESS on the first chunk", () => {
    const record = new JobRecord("j");
    record.addChunk({ seq: 0, delta: "a" });
    assert.equal(record.status, "IN_PROGRESS");
    assert.ok(record.firstChunkAt !== undefined);
  });

  it("keeps the first end: no later end changes status or error", () => {
    const record = new JobRecord("j");
    record.fail(failure);
    record.complete();
    record.stop("CANCELLED");
    record.fail({ code: "TIMED_OUT", message: "late" });
    record.markStarted();
    assert.equal(record.status, "FAILED");
    assert.deepEqual(record.error, failure);

    const cancelled = new JobRecord("k");
    cancelled.stop("CANCELLED");
    cancelled.complete();
    cancelled.fail(failure);
    assert.equal(cancelled.status, "CANCELLED");
    assert.equal(cancelled.error, undefined);
  });

  it("records the error of a timeout", () => {
    const record = new JobRecord("j");
    record.stop("TIMED_OUT", { code: "TIMED_OUT", message: "too slow" });
    assert.equal(record.status, "TIMED_OUT");
    assert.equal(record.error?.code, "TIMED_OUT");
  });

  it("knows the terminal statuses", () => {
    for (const status of ["COMPLETED", "FAILED", "CANCELLED", "TIMED_OUT"] as const) {
      assert.ok(isTerminalStatus(status));
    }
    assert.ok(!isTerminalStatus("IN_QUEUE"));
    assert.ok(!isTerminalStatus("IN_PROGRESS"));
  });

  it("measures delay and execution from the recorded times", () => {
    const record = new JobRecord("j");
    record.markStarted(record.acceptedAt + 40);
    assert.equal(record.delayMs, 40);
    record.complete();
    record.endedAt = (record.startedAt ?? 0) + 125;
    assert.equal(record.executionMs, 125);
    assert.equal(new JobRecord("q").executionMs, 0);
  });
});

describe("JobRecord chunks", () => {
  it("ignores chunks after COMPLETED and FAILED", () => {
    const completed = new JobRecord("c");
    completed.addChunk({ seq: 0, delta: "a" });
    completed.addChunk(final(1));
    completed.complete();
    completed.addChunk({ seq: 2, delta: "late" });
    assert.deepEqual(
      completed.chunks.map((chunk) => chunk.seq),
      [0, 1],
    );

    const failed = new JobRecord("f");
    failed.fail(failure);
    failed.addChunk({ seq: 0, delta: "late" });
    assert.equal(failed.chunks.length, 0);
  });

  it("still records chunks after CANCELLED or TIMED_OUT, final chunk included", () => {
    for (const status of ["CANCELLED", "TIMED_OUT"] as const) {
      const record = new JobRecord("x");
      record.addChunk({ seq: 0, delta: "a" });
      record.stop(status);
      record.addChunk({ seq: 1, delta: "b" });
      record.addChunk({ ...final(2), finish_reason: "cancelled" });
      assert.equal(record.status, status);
      assert.deepEqual(
        record.chunks.map((chunk) => chunk.seq),
        [0, 1, 2],
      );
    }
  });

  it("takeStreamChunks returns only chunks not taken before", () => {
    const record = new JobRecord("s");
    assert.deepEqual(record.takeStreamChunks(), []);
    record.addChunk({ seq: 0, delta: "a" });
    record.addChunk({ seq: 1, delta: "b" });
    assert.equal(record.hasUnstreamedChunks, true);
    assert.deepEqual(record.takeStreamChunks(), [
      { seq: 0, delta: "a" },
      { seq: 1, delta: "b" },
    ]);
    assert.equal(record.hasUnstreamedChunks, false);
    assert.deepEqual(record.takeStreamChunks(), []);
    record.addChunk({ seq: 2, delta: "c" });
    assert.deepEqual(record.takeStreamChunks(), [{ seq: 2, delta: "c" }]);
    assert.equal(record.chunks.length, 3, "taking does not remove chunks from the record");
  });

  it("a record restored with chunks already streamed elsewhere hands out only the later ones", () => {
    // An adopted job: a mirror here had handed out 2 chunks; its chunks are rebuilt after.
    const record = new JobRecord("r");
    record.restore({
      status: "IN_PROGRESS",
      chunks: [],
      generationEnded: false,
      error: undefined,
      startedAt: undefined,
      endedAt: undefined,
      streamed: 2,
    });
    assert.deepEqual(record.takeStreamChunks(), []);
    record.addChunk({ seq: 0, delta: "a" });
    record.addChunk({ seq: 1, delta: "b" });
    assert.equal(record.hasUnstreamedChunks, false);
    record.addChunk({ seq: 2, delta: "c" });
    assert.deepEqual(record.takeStreamChunks(), [{ seq: 2, delta: "c" }]);
  });
});

describe("JobRecord waiting", () => {
  it("waitForChange resolves on a chunk, well before its timeout", async () => {
    const record = new JobRecord("w");
    const started = performance.now();
    const waiting = record.waitForChange(5000);
    setTimeout(() => record.addChunk({ seq: 0, delta: "a" }), 10);
    await waiting;
    assert.ok(performance.now() - started < 1000);
    assert.equal(record.chunks.length, 1);
  });

  it("waitForChange resolves on a status change", async () => {
    const record = new JobRecord("w");
    const waiting = record.waitForChange(5000);
    record.markStarted();
    const winner = await Promise.race([waiting.then(() => "changed"), sleep(1000, "timeout")]);
    assert.equal(winner, "changed");
  });

  it("waitForChange resolves after its timeout when nothing happens", async () => {
    const record = new JobRecord("w");
    const started = performance.now();
    await record.waitForChange(30);
    const waited = performance.now() - started;
    assert.ok(waited >= 25 && waited < 1000, `waited ${waited} ms`);
    assert.equal(record.status, "IN_QUEUE");
  });

  it("waitForEnd waits through chunks until the job ends", async () => {
    const record = new JobRecord("e");
    let ended = false;
    const waiting = record.waitForEnd(5000).then(() => {
      ended = true;
    });
    record.addChunk({ seq: 0, delta: "a" });
    // Lets every callback the chunk set off run.
    await new Promise(setImmediate);
    assert.equal(ended, false, "a chunk is not the end");
    record.complete();
    await waiting;
    assert.equal(ended, true);
  });

  it("waitForEnd gives up after its timeout", async () => {
    const record = new JobRecord("e");
    const started = performance.now();
    await record.waitForEnd(30);
    assert.ok(performance.now() - started >= 25);
    assert.equal(record.terminal, false);
  });

  it("waitForEnd returns at once for a finished job", async () => {
    const record = new JobRecord("e");
    record.fail(failure);
    const started = performance.now();
    await record.waitForEnd(5000);
    assert.ok(performance.now() - started < 100);
  });
});

describe("JobTable", () => {
  it("creates, finds and refuses duplicate ids", () => {
    const table = new JobTable({ retentionMs: 1000 });
    try {
      const record = table.create("a");
      assert.equal(table.get("a"), record);
      assert.ok(table.has("a"));
      assert.equal(table.get("b"), undefined);
      assert.throws(() => table.create("a"), /already in use/);
    } finally {
      table.close();
    }
  });

  it("forgets finished jobs once retention has passed, and only those", () => {
    const table = new JobTable({ retentionMs: 1000 });
    try {
      const done = table.create("done");
      const running = table.create("running");
      running.markStarted();
      table.create("queued");
      done.complete();
      const endedAt = done.endedAt ?? 0;
      // Not exactly at the boundary: endedAt is a fraction, and float sums are inexact.
      table.sweep(endedAt + 990);
      assert.ok(table.has("done"), "kept within retention");
      table.sweep(endedAt + 1001);
      assert.ok(!table.has("done"), "forgotten after retention");
      table.sweep(endedAt + 10_000_000);
      assert.ok(table.has("running") && table.has("queued"), "unfinished jobs are never swept");
    } finally {
      table.close();
    }
  });

  it("keeps at most maxFinished finished jobs, dropping the oldest ends first", async () => {
    const table = new JobTable({ retentionMs: 60_000, maxFinished: 2 });
    try {
      for (const id of ["a", "b", "c", "d", "open"]) table.create(id);
      // End in an order that differs from creation order.
      for (const id of ["c", "a", "d", "b"]) {
        table.get(id)?.complete();
        await sleep(2);
      }
      table.sweep(performance.now());
      assert.deepEqual(
        ["a", "b", "c", "d", "open"].filter((id) => table.has(id)),
        ["b", "d", "open"],
      );
    } finally {
      table.close();
    }
  });

  it("sweeps on creation too when jobs end faster than the timer sweeps", () => {
    const table = new JobTable({ retentionMs: 60_000, maxFinished: 5 });
    try {
      let largest = 0;
      for (let i = 0; i < 100; i += 1) {
        table.create(`job-${i}`).complete();
        largest = Math.max(largest, countKept(table, i + 1));
      }
      // Past twice the cap, a sweep runs every `maxFinished` creations: bounded, not 100.
      assert.ok(largest <= 3 * 5, `kept at most ${largest}`);
      assert.ok(table.has("job-99") && !table.has("job-0"), "the newest are kept");
    } finally {
      table.close();
    }
  });

  it("counts each ended job once, by status, and unfinished jobs by state", () => {
    const told: string[] = [];
    const table = new JobTable({ retentionMs: 1000, onEnd: (record) => told.push(record.id) });
    try {
      const ends: Array<(record: ReturnType<JobTable["create"]>) => void> = [
        (r) => r.complete(),
        (r) => r.complete(),
        (r) => r.fail(failure),
        (r) => r.stop("CANCELLED"),
        (r) => r.stop("TIMED_OUT"),
      ];
      ends.forEach((end, index) => {
        const record = table.create(`ended-${index}`);
        end(record);
        // A second end of an ended job changes and counts nothing.
        record.fail(failure);
        record.stop("CANCELLED");
      });
      table.create("q1");
      table.create("q2");
      table.create("p").markStarted();
      assert.deepEqual(table.counts, { completed: 2, failed: 1, cancelled: 1, timedOut: 1 });
      assert.deepEqual(table.unfinished(), { inQueue: 2, inProgress: 1 });
      assert.deepEqual(told, ["ended-0", "ended-1", "ended-2", "ended-3", "ended-4"]);
    } finally {
      table.close();
    }
  });
});

/** How many of the first `created` jobs (`job-<i>`) the table still holds. */
function countKept(table: JobTable, created: number): number {
  let kept = 0;
  for (let i = 0; i < created; i += 1) if (table.has(`job-${i}`)) kept += 1;
  return kept;
}
