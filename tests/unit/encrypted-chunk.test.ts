import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { FernetKey, KeyRing } from "../../shared/crypto/index.js";
import {
  decryptChunk,
  encryptChunk,
  isEncryptedChunk,
  type StreamChunk,
} from "../../shared/protocol/index.js";

const oldKey = FernetKey.generate();
const newKey = FernetKey.generate();
const delta: StreamChunk = { seq: 3, delta: "secret text" };
const final: StreamChunk = {
  seq: 4,
  done: true,
  finish_reason: "stop",
  usage: { prompt_tokens: 2, completion_tokens: 3 },
  timings: { queue_ms: 1, load_ms: 0, ttft_ms: 2, total_ms: 3 },
};

describe("encrypted chunks", () => {
  it("hide everything but seq, deltas and final chunks alike", () => {
    const ring = new KeyRing([newKey]);
    for (const chunk of [delta, final]) {
      const sealed = encryptChunk(ring, chunk);
      assert.deepEqual(Object.keys(sealed).sort(), ["encrypted", "seq"]);
      assert.equal(sealed.seq, chunk.seq);
      assert.ok(isEncryptedChunk(sealed));
      assert.ok(!sealed.encrypted.includes("secret"));
      assert.deepEqual(decryptChunk(ring, sealed), chunk);
      assert.equal(newKey.decrypt(sealed.encrypted).toString(), JSON.stringify(chunk));
    }
  });

  it("are made with the first key of a rotating ring and open with any ring holding it", () => {
    const rotating = new KeyRing([newKey, oldKey]);
    const sealed = encryptChunk(rotating, delta);
    assert.deepEqual(decryptChunk(new KeyRing([newKey]), sealed), delta);
    assert.equal(decryptChunk(new KeyRing([oldKey]), sealed), undefined);
  });

  it("do not open when moved to another seq, tampered or not a chunk", () => {
    const ring = new KeyRing([newKey]);
    const sealed = encryptChunk(ring, delta);
    assert.equal(decryptChunk(ring, { ...sealed, seq: 4 }), undefined);
    assert.equal(decryptChunk(ring, { seq: 3, encrypted: `${sealed.encrypted}A` }), undefined);
    const notChunk = { seq: 3, encrypted: ring.encrypt(JSON.stringify({ seq: 3 })) };
    assert.equal(decryptChunk(ring, notChunk), undefined);
  });
});
