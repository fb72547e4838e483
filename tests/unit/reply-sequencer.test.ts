import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { ReplySequencer } from "../../orchestrator/relay/reply-sequencer.js";

/** Offers each number with a label and returns everything delivered, in delivery order. */
function feed(sequencer: ReplySequencer<string>, seqs: readonly number[]): string[] {
  return seqs.flatMap((seq) => sequencer.offer(seq, `r${seq}`));
}

/** A deterministic pseudo-random source (mulberry32), so a failure can be replayed. */
function random(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

describe("ReplySequencer", () => {
  it("delivers replies that arrive in order at once", () => {
    const sequencer = new ReplySequencer<string>();
    assert.equal(sequencer.next, 0);
    assert.deepEqual(sequencer.offer(0, "a"), ["a"]);
    assert.deepEqual(sequencer.offer(1, "b"), ["b"]);
    assert.deepEqual(sequencer.offer(2, "c"), ["c"]);
    assert.equal(sequencer.next, 3);
    assert.equal(sequencer.hasGap, false);
  });

  it("drops duplicates, delivered or waiting", () => {
    const sequencer = new ReplySequencer<string>();
    assert.deepEqual(feed(sequencer, [0, 1, 0, 1]), ["r0", "r1"]);
    assert.deepEqual(sequencer.offer(3, "first"), []);
    assert.deepEqual(sequencer.offer(3, "second"), []);
    assert.deepEqual(sequencer.offer(2, "r2"), ["r2", "first"]);
    assert.deepEqual(sequencer.offer(3, "again"), []);
    assert.equal(sequencer.next, 4);
  });

  it("holds replies behind a missing one and reports the gap", () => {
    const sequencer = new ReplySequencer<string>();
    assert.deepEqual(feed(sequencer, [0, 2, 3, 5]), ["r0"]);
    assert.equal(sequencer.hasGap, true);
    assert.equal(sequencer.next, 1);
    assert.deepEqual(sequencer.offer(1, "r1"), ["r1", "r2", "r3"]);
    assert.equal(sequencer.hasGap, true, "5 still waits for 4");
    assert.deepEqual(sequencer.offer(4, "r4"), ["r4", "r5"]);
    assert.equal(sequencer.hasGap, false);
    assert.equal(sequencer.next, 6);
  });

  it("reports a gap when the very first reply is missing", () => {
    const sequencer = new ReplySequencer<string>();
    assert.deepEqual(sequencer.offer(1, "r1"), []);
    assert.equal(sequencer.hasGap, true);
    assert.deepEqual(sequencer.offer(0, "r0"), ["r0", "r1"]);
    assert.equal(sequencer.hasGap, false);
  });

  it("puts any shuffle of 0..999 with duplicates back in order, exactly once each", () => {
    for (const seed of [1, 2, 3, 42, 2024]) {
      const next = random(seed);
      const seqs = Array.from({ length: 1000 }, (_, i) => i);
      // Every number once more at a random place, and a few thrice.
      for (let i = 0; i < 1000; i += 1) seqs.push(Math.floor(next() * 1000));
      for (let i = seqs.length - 1; i > 0; i -= 1) {
        const j = Math.floor(next() * (i + 1));
        [seqs[i], seqs[j]] = [seqs[j] as number, seqs[i] as number];
      }
      const sequencer = new ReplySequencer<number>();
      const delivered = seqs.flatMap((seq) => sequencer.offer(seq, seq));
      assert.deepEqual(
        delivered,
        Array.from({ length: 1000 }, (_, i) => i),
        `seed ${seed}`,
      );
      assert.equal(sequencer.hasGap, false);
      assert.equal(sequencer.next, 1000);
    }
  });
});
