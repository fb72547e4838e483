/** Assertions on a job's stream as a caller received it. */
import assert from "node:assert/strict";
import { isFinalChunk, type StreamChunk } from "../../shared/protocol/index.js";

/** Chunks numbered 0..n without a gap or a repeat, the final chunk last. */
export function assertOneNumbering(chunks: readonly StreamChunk[]): void {
  assert.deepEqual(
    chunks.map((chunk) => chunk.seq),
    chunks.map((_, index) => index),
  );
  const last = chunks.at(-1);
  assert.ok(last !== undefined && isFinalChunk(last), "the stream ends with its final chunk");
}
