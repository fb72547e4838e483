import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { before, describe, it } from "node:test";
import { FernetKey, InvalidTokenError } from "../../shared/crypto/index.js";

// One python3 run does every Python-side step; data goes through stdin/stdout as JSON, bytes as
// standard base64. Each decryption reports InvalidToken instead of aborting the whole batch.
const PYTHON = `
import base64, json, sys
from cryptography.fernet import Fernet, InvalidToken

def attempt(action):
    try:
        return {"ok": base64.b64encode(action()).decode()}
    except InvalidToken:
        return {"error": "InvalidToken"}

def check(fernet, case):
    if case["ttl"] is None:
        return fernet.decrypt(case["token"])
    if case["now"] is None:
        return fernet.decrypt(case["token"], ttl=case["ttl"])
    return fernet.decrypt_at_time(case["token"], case["ttl"], case["now"])

request = json.load(sys.stdin)
python_key = Fernet.generate_key().decode()
python = Fernet(python_key)
ours = Fernet(request["ourKey"])
json.dump({
    "pythonKey": python_key,
    "pythonTokens": [python.encrypt(base64.b64decode(p)).decode() for p in request["payloads"]],
    "decrypted": [attempt(lambda t=t: ours.decrypt(t)) for t in request["ourTokens"]],
    "standardAlphabetKey": attempt(
        lambda: Fernet(request["ourKeyStandard"]).decrypt(request["ourTokens"][0])),
    "timedTokens": [
        python.encrypt_at_time(b"timed", c["timestamp"]).decode() for c in request["timeCases"]],
    "timeChecks": [attempt(lambda c=c: check(ours, c)) for c in request["timeCases"]],
}, sys.stdout)
`;

type Attempt = { ok: string } | { error: "InvalidToken" };
interface PythonResult {
  pythonKey: string;
  pythonTokens: string[];
  decrypted: Attempt[];
  standardAlphabetKey: Attempt;
  timedTokens: string[];
  timeChecks: Attempt[];
}
interface TimeCase {
  label: string;
  timestamp: number;
  /** `null`: decrypt without a TTL. */
  ttl: number | null;
  /** `null`: the real clock. */
  now: number | null;
  valid: boolean;
}

function probePython(): string | false {
  const probe = spawnSync("python3", ["-c", "import cryptography.fernet"], { encoding: "utf8" });
  if (probe.error) return `python3 is not runnable (${probe.error.message}): interop skipped`;
  if (probe.status !== 0) return "python3 has no 'cryptography' module: interop skipped";
  return false;
}

function runPython(request: unknown): PythonResult {
  const run = spawnSync("python3", ["-c", PYTHON], {
    input: JSON.stringify(request),
    encoding: "utf8",
    maxBuffer: 256 * 1024 * 1024,
  });
  if (run.error) throw run.error;
  assert.equal(run.status, 0, `python3 failed: ${run.stderr}`);
  return JSON.parse(run.stdout) as PythonResult;
}

function plaintextOf(attempt: Attempt | undefined): Buffer {
  assert.ok(attempt !== undefined && "ok" in attempt, "Python refused the token");
  return Buffer.from(attempt.ok, "base64");
}

/** Whether our key accepts the token, insisting that a refusal is an InvalidTokenError. */
function weAccept(key: FernetKey, token: string, ttl: number | null, now: number | null): boolean {
  try {
    key.decrypt(
      token,
      ttl === null ? {} : now === null ? { ttlSeconds: ttl } : { ttlSeconds: ttl, now },
    );
    return true;
  } catch (error) {
    assert.ok(error instanceof InvalidTokenError, `unexpected ${String(error)}`);
    return false;
  }
}

const TEXT = "Grüße, 世界! 🔐 émoji 👩‍💻 and CJK 漢字かなカナ한국어";
const payloads: [string, Buffer][] = [
  ["empty", Buffer.alloc(0)],
  ["1 byte", Buffer.from([0x80])],
  ["1 MB random", randomBytes(1024 * 1024)],
  ["UTF-8 text with emoji and CJK", Buffer.from(TEXT, "utf8")],
  ["all 256 byte values", Buffer.from(Array.from({ length: 256 }, (_, i) => i))],
];
const T = 1_700_000_000;
const realNow = Math.floor(Date.now() / 1000);
const timeCases: TimeCase[] = [
  { label: "at exactly timestamp + ttl", timestamp: T, ttl: 60, now: T + 60, valid: true },
  { label: "one second after timestamp + ttl", timestamp: T, ttl: 60, now: T + 61, valid: false },
  { label: "60 s in the future (allowed skew)", timestamp: T, ttl: 60, now: T - 60, valid: true },
  { label: "61 s in the future", timestamp: T, ttl: 60, now: T - 61, valid: false },
  { label: "ttl 0 in the same second", timestamp: T, ttl: 0, now: T, valid: true },
  {
    label: "old token, ttl 60, real clock",
    timestamp: realNow - 3600,
    ttl: 60,
    now: null,
    valid: false,
  },
  { label: "old token, no ttl", timestamp: realNow - 3600, ttl: null, now: null, valid: true },
  { label: "year-36812 token, no ttl", timestamp: 2 ** 40, ttl: null, now: null, valid: true },
];

const skip = probePython();

describe("Fernet interop with Python cryptography", { skip }, () => {
  const ourKey = FernetKey.generate();
  let python: PythonResult;
  let pythonKey: FernetKey;

  before(() => {
    const ourText = ourKey.exportKey();
    python = runPython({
      ourKey: ourText,
      ourKeyStandard: ourText.replaceAll("-", "+").replaceAll("_", "/"),
      payloads: payloads.map(([, bytes]) => bytes.toString("base64")),
      ourTokens: payloads.map(([name, bytes]) =>
        ourKey.encrypt(name.startsWith("UTF-8") ? TEXT : bytes),
      ),
      timeCases: timeCases.map((c) => ({
        ...c,
        token: ourKey.encrypt("timed", { now: c.timestamp }),
      })),
    });
    pythonKey = FernetKey.parse(python.pythonKey);
  });

  it("parses a key from Fernet.generate_key() and prints it back identically", () => {
    assert.match(python.pythonKey, /^[A-Za-z0-9_-]{43}=$/);
    assert.equal(pythonKey.exportKey(), python.pythonKey);
  });

  it("writes keys Python reads, in the url-safe and the standard alphabet alike", () => {
    assert.deepEqual(plaintextOf(python.standardAlphabetKey), payloads[0]?.[1]);
    const standard = ourKey.exportKey().replaceAll("-", "+").replaceAll("_", "/");
    assert.ok(FernetKey.parse(standard).equals(ourKey));
  });

  for (const [index, [name, bytes]] of payloads.entries()) {
    it(`Python encrypts, we decrypt: ${name}`, () => {
      const token = python.pythonTokens[index];
      assert.ok(token !== undefined);
      const plaintext = pythonKey.decrypt(token);
      assert.ok(plaintext.equals(bytes), `${name}: plaintext differs`);
      if (name.startsWith("UTF-8")) assert.equal(plaintext.toString("utf8"), TEXT);
    });

    it(`we encrypt, Python decrypts: ${name}`, () => {
      assert.ok(plaintextOf(python.decrypted[index]).equals(bytes), `${name}: plaintext differs`);
    });
  }

  for (const [index, c] of timeCases.entries()) {
    it(`TTL decision agrees: ${c.label} → ${c.valid ? "accepted" : "rejected"}`, () => {
      const check = python.timeChecks[index];
      assert.equal(check !== undefined && "ok" in check, c.valid, "Python's decision");
      const token = python.timedTokens[index];
      assert.ok(token !== undefined);
      assert.equal(weAccept(pythonKey, token, c.ttl, c.now), c.valid, "our decision");
    });
  }
});
