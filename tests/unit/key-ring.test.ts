import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { inspect } from "node:util";
import {
  FernetKey,
  InvalidKeyError,
  InvalidTokenError,
  KeyRing,
} from "../../shared/crypto/index.js";
import { ConfigError, ErrorCode } from "../../shared/errors/index.js";

/** Asserts `action` throws a ConfigError that mentions every `expected` and none of `secrets`. */
function assertConfigError(action: () => unknown, expected: string[], secrets: string[]): void {
  assert.throws(action, (error: unknown) => {
    assert.ok(error instanceof ConfigError);
    assert.equal(error.code, ErrorCode.CONFIG_INVALID);
    for (const text of expected) assert.ok(error.message.includes(text), `"${text}" missing`);
    for (const shown of [error.message, String(error), inspect(error), JSON.stringify(error)]) {
      for (const secret of secrets) {
        assert.ok(!shown.includes(secret), "the error reveals key text");
        assert.ok(!shown.includes(secret.slice(0, 12)), "the error reveals part of the key");
      }
    }
    return true;
  });
}

/** Asserts that decrypting `token` fails with InvalidTokenError and nothing else. */
function assertInvalid(decrypt: (token: string) => unknown, token: string, label: string): void {
  assert.throws(
    () => decrypt(token),
    (error: unknown) => error instanceof InvalidTokenError,
    `${label}: expected InvalidTokenError`,
  );
}

function encodePadded(bytes: Buffer): string {
  const text = bytes.toString("base64url");
  return text + "=".repeat((4 - (text.length % 4)) % 4);
}

describe("FernetKey.parse", () => {
  const key = FernetKey.generate();
  const text = key.exportKey();

  it("round-trips the 44-character url-safe form and accepts the standard alphabet", () => {
    assert.match(text, /^[A-Za-z0-9_-]{43}=$/);
    assert.ok(FernetKey.parse(text).equals(key));
    assert.equal(FernetKey.parse(text).exportKey(), text);
    const standard = Buffer.from(text, "base64url").toString("base64");
    assert.ok(FernetKey.parse(standard).equals(key));
    assert.ok(!FernetKey.generate().equals(key));
  });

  it("rejects anything else without echoing it", () => {
    const bad = [
      text.slice(0, 43), // no padding: Python refuses it too
      `${text}=`,
      ` ${text}`,
      `${text}\n`,
      `${text.slice(0, 20)}!${text.slice(21)}`,
      Buffer.alloc(31).toString("base64"),
      Buffer.alloc(33).toString("base64"),
      "",
    ];
    for (const candidate of bad) {
      assertConfigError(() => FernetKey.parse(candidate), ["is not a Fernet key"], [text]);
      assert.throws(() => FernetKey.parse(candidate), InvalidKeyError);
    }
  });

  it("never shows key material through inspect, JSON, strings or own properties", () => {
    for (const shown of [
      String(key),
      `${key}`,
      inspect(key),
      inspect(key, { showHidden: true, depth: 5 }),
      inspect(key, { customInspect: false, showHidden: true }),
      inspect({ nested: { key } }),
      JSON.stringify({ key }),
    ]) {
      assert.ok(!shown.includes(text) && !shown.includes(text.slice(0, 12)), shown);
    }
    assert.equal(inspect(key), "FernetKey(<redacted>)");
    assert.equal(JSON.stringify({ key }), '{"key":"FernetKey(<redacted>)"}');
    assert.deepEqual(Object.keys(key), []);
  });
});

describe("KeyRing", () => {
  const oldKey = FernetKey.generate();
  const newKey = FernetKey.generate();
  const stranger = FernetKey.generate();

  it("rotates: the first key encrypts, every key decrypts", () => {
    const oldToken = oldKey.encrypt("made before rotation");
    const ring = KeyRing.parse(` ${newKey.exportKey()} ,\t${oldKey.exportKey()} `);
    assert.equal(ring.size, 2);
    assert.ok(ring.primary.equals(newKey));
    assert.equal(ring.decrypt(oldToken).toString(), "made before rotation");

    const newToken = ring.encrypt("made after rotation");
    assert.equal(newKey.decrypt(newToken).toString(), "made after rotation");
    assert.throws(() => oldKey.decrypt(newToken), InvalidTokenError);
    assert.equal(ring.decrypt(newToken).toString(), "made after rotation");

    assertInvalid((t) => ring.decrypt(t), stranger.encrypt("not ours"), "unknown key");
    assertInvalid((t) => new KeyRing([newKey]).decrypt(t), oldToken, "retired key");
  });

  it("applies the TTL whichever key matches", () => {
    const ring = new KeyRing([newKey, oldKey]);
    const token = oldKey.encrypt("x", { now: 1000 });
    assert.equal(ring.decrypt(token, { ttlSeconds: 60, now: 1060 }).toString(), "x");
    assertInvalid((t) => ring.decrypt(t, { ttlSeconds: 60, now: 1061 }), token, "expired");
  });

  it("names the variable and the 1-based entry in parse errors, never the key text", () => {
    const good = newKey.exportKey();
    const almost = good.slice(0, 43);
    const secrets = [good, almost, oldKey.exportKey()];
    assertConfigError(
      () => KeyRing.parse(`${good},${almost}`, "MY_KEYS"),
      ["MY_KEYS entry 2 of 2", "not a Fernet key"],
      secrets,
    );
    assertConfigError(
      () => KeyRing.parse(`${good}, ,${oldKey.exportKey()}`),
      ["ENCRYPTION_KEY entry 2 of 3", "empty"],
      secrets,
    );
    assertConfigError(
      () => KeyRing.parse(`${good},`),
      ["ENCRYPTION_KEY entry 2 of 2", "empty"],
      secrets,
    );
    assertConfigError(
      () => KeyRing.parse(`${oldKey.exportKey()},${good},${good}`),
      ["entry 3 of 3 repeats entry 2"],
      secrets,
    );
    const standard = Buffer.from(good, "base64url").toString("base64");
    assertConfigError(
      () => KeyRing.parse(`${good},${standard}`),
      ["entry 2 of 2 repeats entry 1"],
      secrets,
    );
    assertConfigError(() => KeyRing.parse("  "), ["ENCRYPTION_KEY"], secrets);
    assertConfigError(
      () => KeyRing.parse(undefined as unknown as string, "KEYS"),
      ["KEYS"],
      secrets,
    );
    assert.throws(() => KeyRing.parse(almost), InvalidKeyError);
    assert.throws(() => new KeyRing([]), RangeError);
  });

  it("never shows key material through inspect or JSON", () => {
    const ring = new KeyRing([newKey, oldKey]);
    const shown = [
      inspect(ring),
      inspect(ring, { customInspect: false, showHidden: true }),
      JSON.stringify({ ring }),
    ];
    for (const text of shown) {
      for (const key of [newKey, oldKey])
        assert.ok(!text.includes(key.exportKey().slice(0, 12)), text);
    }
    assert.equal(inspect(ring), "KeyRing(2 keys, <redacted>)");
  });
});

describe("KeyRing refuses every malformed token with InvalidTokenError", () => {
  const key = FernetKey.generate();
  const ring = new KeyRing([FernetKey.generate(), key]);
  const decrypt = (token: string) => ring.decrypt(token);
  const token = key.encrypt("short");
  const bytes = Buffer.from(token, "base64url");

  it("accepts the untouched token (so the failures below are about the change)", () => {
    assert.equal(ring.decrypt(token).toString(), "short");
    assert.equal(encodePadded(bytes), token);
  });

  it("refuses a token with any single byte changed", () => {
    assert.equal(bytes.length, 73);
    for (let position = 0; position < bytes.length; position++) {
      for (const mask of [0x01, 0x80, 0xff]) {
        const tampered = Buffer.from(bytes);
        tampered[position] = (tampered[position] ?? 0) ^ mask;
        assertInvalid(decrypt, encodePadded(tampered), `byte ${position} ^ ${mask}`);
      }
    }
  });

  it("refuses truncated and extended tokens", () => {
    for (let length = 0; length < bytes.length; length++) {
      assertInvalid(decrypt, encodePadded(bytes.subarray(0, length)), `${length} bytes`);
    }
    // Dropping the whole padding is allowed; any other cut is not.
    const unpadded = token.replace(/=+$/, "");
    assert.equal(ring.decrypt(unpadded).toString(), "short");
    for (let length = 0; length < token.length; length++) {
      if (length === unpadded.length) continue;
      assertInvalid(decrypt, token.slice(0, length), `${length} characters`);
    }
    for (const extra of [Buffer.alloc(1), Buffer.alloc(16), Buffer.alloc(32)]) {
      assertInvalid(decrypt, encodePadded(Buffer.concat([bytes, extra])), `+${extra.length} bytes`);
    }
  });

  it("refuses garbage and other spellings of a valid token", () => {
    const garbage = [
      "",
      " ",
      "\n",
      "=",
      "====",
      `${token}=`,
      `${token}==`,
      ` ${token}`,
      `${token}\n`,
      `${token.slice(0, 10)}\u00e9${token.slice(10)}`,
      `${token.slice(0, 10)}=${token.slice(10)}`,
      "gAAAAA%%%%",
      "!@#$%^&*()",
      "Grüße 世界 🔐",
      "\u0000".repeat(100),
      "A".repeat(1_000_000),
      `gAAAAAAA${"A".repeat(5_000_000)}`,
      "x".repeat(10_000_000),
    ];
    for (const candidate of garbage)
      assertInvalid(decrypt, candidate, JSON.stringify(candidate.slice(0, 20)));
    for (const notString of [undefined, null, 42, {}, [], bytes, Symbol("token")]) {
      assertInvalid(
        (t) => ring.decrypt(t),
        notString as unknown as string,
        String(typeof notString),
      );
    }
  });

  it("refuses a non-canonical spelling (unused low bits set in the last character)", () => {
    // 73 bytes → 98 base64 characters; the last one carries 4 unused bits.
    const text = bytes.toString("base64url");
    const last = text.at(-1) ?? "";
    const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    const sibling = alphabet[alphabet.indexOf(last) ^ 1] ?? "";
    const respelled = `${text.slice(0, -1)}${sibling}`;
    assert.ok(Buffer.from(respelled, "base64url").equals(bytes), "same bytes, other spelling");
    assertInvalid(decrypt, respelled, "non-canonical");
  });
});
