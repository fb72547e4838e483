import assert from "node:assert/strict";
import { createHmac } from "node:crypto";
import { describe, it } from "node:test";
import {
  clientTokenHeader,
  clientTokenOf,
  FernetKey,
  KeyRing,
  ringOwnsClientToken,
} from "../../shared/crypto/index.js";

describe("client tokens (a job's owner proof, derived from the client's key)", () => {
  const a = FernetKey.generate();
  const older = FernetKey.generate();
  const b = FernetKey.generate();

  it("travels in the X-Client-Token header (lower case, as node:http gives headers)", () => {
    assert.equal(clientTokenHeader, "x-client-token");
  });

  it("is HMAC-SHA256 of the label under the signing half, url-safe base64", () => {
    const signing = Buffer.from(a.exportKey(), "base64url").subarray(0, 16);
    const expected = createHmac("sha256", signing)
      .update("secure-llm-pool client token v1")
      .digest("base64url");
    assert.equal(clientTokenOf(a), expected);
    assert.ok(!clientTokenOf(a).includes(a.exportKey().slice(0, 12)), "does not show the key");
  });

  it("is owned by a ring holding the key, the older keys of a rotation included", () => {
    const ring = new KeyRing([a, older]);
    assert.equal(ringOwnsClientToken(ring, clientTokenOf(a)), true);
    assert.equal(ringOwnsClientToken(ring, clientTokenOf(older)), true);
    assert.equal(ringOwnsClientToken(ring, clientTokenOf(b)), false);
    assert.equal(ringOwnsClientToken(ring, ""), false);
    assert.equal(ringOwnsClientToken(ring, "not base64 !!"), false);
    assert.equal(ringOwnsClientToken(ring, clientTokenOf(a).slice(0, -2)), false);
  });

  it("never derives a value from a label that could stand for a token's MAC", () => {
    assert.throws(() => a.derive("\u0080anything"), RangeError);
  });
});
