import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { FernetKey, InvalidTokenError } from "../../shared/crypto/index.js";
import { ErrorCode } from "../../shared/errors/index.js";

interface Vector {
  token: string;
  now: string;
  secret: string;
}
interface GenerateVector extends Vector {
  iv: number[];
  src: string;
}
interface VerifyVector extends Vector {
  ttl_sec: number;
  src: string;
}
interface InvalidVector extends Vector {
  desc: string;
  ttl_sec: number;
}

/** Runs from `tests/unit` (tsx) and from `dist/tests/unit` (compiled): walk up to package.json. */
function findRepoRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, "package.json"))) {
    const parent = dirname(dir);
    if (parent === dir) throw new Error("no package.json above the test file");
    dir = parent;
  }
  return dir;
}

const fixturesDir = resolve(findRepoRoot(), "../shared/fixtures/fernet");
const skip = existsSync(fixturesDir)
  ? false
  : "../shared/fixtures/fernet not found: spec vectors skipped";

function load<T>(name: string): T[] {
  if (skip) return [];
  const vectors = JSON.parse(readFileSync(join(fixturesDir, name), "utf8")) as T[];
  assert.ok(Array.isArray(vectors) && vectors.length > 0, `${name} holds no vectors`);
  return vectors;
}

describe("Fernet spec vectors", { skip }, () => {
  for (const [index, vector] of load<GenerateVector>("generate.json").entries()) {
    it(`generate #${index + 1}: encrypts to the exact token, which decrypts back`, () => {
      const key = FernetKey.parse(vector.secret);
      const options = { now: new Date(vector.now), iv: Uint8Array.from(vector.iv) };
      assert.equal(key.encrypt(vector.src, options), vector.token);
      assert.equal(key.decrypt(vector.token).toString("utf8"), vector.src);
    });
  }

  for (const [index, vector] of load<VerifyVector>("verify.json").entries()) {
    it(`verify #${index + 1}: decrypts within the TTL`, () => {
      const key = FernetKey.parse(vector.secret);
      const options = { ttlSeconds: vector.ttl_sec, now: new Date(vector.now) };
      assert.equal(key.decrypt(vector.token, options).toString("utf8"), vector.src);
    });
  }

  for (const vector of load<InvalidVector>("invalid.json")) {
    it(`invalid: ${vector.desc}`, () => {
      const key = FernetKey.parse(vector.secret);
      const options = { ttlSeconds: vector.ttl_sec, now: new Date(vector.now) };
      assert.throws(
        () => key.decrypt(vector.token, options),
        (error: unknown) => {
          assert.ok(error instanceof InvalidTokenError);
          assert.equal(error.code, ErrorCode.DECRYPT_FAILED);
          assert.ok(!error.message.includes(vector.token));
          assert.ok(!error.message.includes(vector.secret));
          return true;
        },
      );
    });
  }
});

describe("Fernet token format", () => {
  // A fixed, public test key (the spec's) keeps the tokens below deterministic.
  const key = FernetKey.parse("cw_0x689RpI-jtRR7oE8h_eQsKImvJapLeSbXpwF4e4=");
  const iv = Uint8Array.from({ length: 16 }, (_, i) => 0xf0 + i);

  it("lays out version, big-endian seconds, IV, whole cipher blocks and a MAC", () => {
    for (const [length, blocks] of [
      [0, 1],
      [15, 1],
      [16, 2],
      [33, 3],
    ] as const) {
      const token = key.encrypt(new Uint8Array(length), { now: 0x0102030405, iv });
      assert.match(token, /^[A-Za-z0-9_-]+={0,2}$/);
      assert.equal(token.length % 4, 0, "padded like Python's urlsafe_b64encode");
      const bytes = Buffer.from(token, "base64url");
      assert.equal(bytes[0], 0x80);
      assert.deepEqual([...bytes.subarray(1, 9)], [0, 0, 0, 1, 2, 3, 4, 5]);
      assert.deepEqual(bytes.subarray(9, 25), Buffer.from(iv));
      assert.equal(bytes.length, 1 + 8 + 16 + 16 * blocks + 32);
    }
  });

  it("uses a fresh random IV for each token by default", () => {
    const first = Buffer.from(key.encrypt("same", { now: 1 }), "base64url");
    const second = Buffer.from(key.encrypt("same", { now: 1 }), "base64url");
    assert.notDeepEqual(first.subarray(9, 25), second.subarray(9, 25));
  });

  it("stamps the current time by default", () => {
    const before = Math.floor(Date.now() / 1000);
    const bytes = Buffer.from(key.encrypt("x"), "base64url");
    const stamped = Number(bytes.readBigUInt64BE(1));
    assert.ok(stamped >= before && stamped <= Math.floor(Date.now() / 1000));
  });

  it("applies Python's TTL rule: expired after timestamp + ttl, 60 s allowed clock skew", () => {
    const token = key.encrypt("t", { now: 1000 });
    const accepts = (now: number, ttlSeconds = 60) => {
      try {
        return key.decrypt(token, { ttlSeconds, now }).toString() === "t";
      } catch (error) {
        assert.ok(error instanceof InvalidTokenError);
        return false;
      }
    };
    assert.equal(accepts(1060), true);
    assert.equal(accepts(1061), false);
    assert.equal(accepts(940), true);
    assert.equal(accepts(939), false);
    assert.equal(accepts(1000, 0), true);
    assert.equal(accepts(1001, 0), false);
    assert.equal(key.decrypt(token, { now: 10 ** 9 }).toString(), "t", "no ttl: no time check");
  });

  it("accepts a token without its padding, and refuses the standard +/ alphabet", () => {
    const token = key.encrypt(Buffer.from([0xfb, 0xff, 0xfe]), { now: 1, iv });
    assert.ok(token.endsWith("="));
    assert.deepEqual([...key.decrypt(token.replace(/=+$/, ""))], [0xfb, 0xff, 0xfe]);
    assert.match(token, /[-_]/, "this IV makes the token use the url-safe characters");
    const standard = token.replaceAll("-", "+").replaceAll("_", "/");
    assert.throws(() => key.decrypt(standard), InvalidTokenError);
  });

  it("refuses bad options with RangeError, not InvalidTokenError", () => {
    assert.throws(() => key.encrypt("x", { iv: new Uint8Array(15) }), RangeError);
    assert.throws(() => key.encrypt("x", { now: -1 }), RangeError);
    assert.throws(() => key.encrypt("x", { now: 1.5 }), RangeError);
    assert.throws(() => key.encrypt("x", { now: new Date(Number.NaN) }), RangeError);
    const token = key.encrypt("x");
    assert.throws(() => key.decrypt(token, { ttlSeconds: -1 }), RangeError);
    assert.throws(() => key.decrypt(token, { ttlSeconds: Number.NaN }), RangeError);
  });
});
