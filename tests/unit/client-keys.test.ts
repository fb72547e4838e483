import assert from "node:assert/strict";
import { chmod, mkdtemp, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import { type AdmissionPolicy, admitRequest } from "../../orchestrator/admission/admit-request.js";
import { readClientKeysFile } from "../../shared/config/index.js";
import { ClientKeys, FernetKey, KeyRing, parseClientKeys } from "../../shared/crypto/index.js";
import { ConfigError, PoolError } from "../../shared/errors/index.js";

const pool = new KeyRing([FernetKey.generate()]);
const a = FernetKey.generate();
const aOld = FernetKey.generate();
const b = FernetKey.generate();

function refusedWith(text: string, pattern: RegExp): void {
  let caught: unknown;
  try {
    parseClientKeys(text, "keys.txt", pool);
  } catch (error) {
    caught = error;
  }
  assert.ok(caught instanceof ConfigError, `expected a ConfigError, got ${String(caught)}`);
  assert.match(caught.message, pattern);
  for (const key of [a, aOld, b, pool.primary]) {
    assert.ok(!caught.message.includes(key.exportKey()), "a key shows in the message");
    assert.ok(!caught.message.includes(key.exportKey().slice(0, 20)), "part of a key shows");
  }
}

describe("client keys file (CLIENT_KEYS_FILE)", () => {
  it("reads one ring per client, the first key primary, skipping comments and blank lines", () => {
    const keys = parseClientKeys(
      `# clients\n\nalpha = ${a.exportKey()} , ${aOld.exportKey()}\r\nbeta-2.x_y=${b.exportKey()}\n`,
      "keys.txt",
      pool,
    );
    assert.equal(keys.size, 2);
    assert.deepEqual(keys.names, ["alpha", "beta-2.x_y"]);
    assert.ok(keys.ringOf("alpha")?.primary.equals(a));
    assert.equal(keys.ringOf("alpha")?.size, 2);
    assert.ok(keys.ringOf("beta-2.x_y")?.primary.equals(b));
    assert.equal(keys.ringOf("gamma"), undefined);
    assert.equal(keys.ringOf("__proto__"), undefined);
    assert.ok(!JSON.stringify(keys).includes(a.exportKey()));
  });

  it("refuses bad lines by file and line number, never showing a key", () => {
    refusedWith(
      `x=${a.exportKey()}\nx=${b.exportKey()}`,
      /keys\.txt line 2 repeats the client "x"/,
    );
    refusedWith(`x=${a.exportKey()}\ny=${a.exportKey()}`, /line 2 key 1 of 1 is already used/);
    refusedWith(`x=${a.exportKey()},${a.exportKey()}`, /line 1 key 2 of 2 is already used/);
    refusedWith(
      `x=${pool.primary.exportKey()}`,
      /line 1 key 1 of 1 is already used by ENCRYPTION_KEY/,
    );
    refusedWith(`\n\nx=${a.exportKey().slice(0, 40)}`, /line 3 key 1 of 1 is not a Fernet key/);
    refusedWith(`x=${a.exportKey()},`, /line 1 key 2 of 2 is not a Fernet key/);
    refusedWith(a.exportKey().replace("=", ""), /line 1 must be name=key/);
    refusedWith(`-x=${a.exportKey()}`, /line 1: a client name is/);
    refusedWith(`${"n".repeat(65)}=${a.exportKey()}`, /line 1: a client name is/);
    refusedWith(`a b=${a.exportKey()}`, /line 1: a client name is/);
  });

  describe("the file", () => {
    let dir: string;
    before(async () => {
      dir = await mkdtemp(path.join(os.tmpdir(), "client-keys-"));
    });
    after(() => rm(dir, { recursive: true, force: true }));

    it("is read when only its owner may read it, refused otherwise", async () => {
      const file = path.join(dir, "clients.keys");
      await writeFile(file, `alpha=${a.exportKey()}\n`, { mode: 0o600 });
      assert.equal((await readClientKeysFile(file, pool)).size, 1);
      for (const mode of [0o640, 0o604, 0o620]) {
        await chmod(file, mode);
        await assert.rejects(readClientKeysFile(file, pool), (error: Error) => {
          assert.ok(error instanceof ConfigError);
          assert.match(error.message, /readable by its owner only/);
          assert.ok(error.message.includes(file));
          return true;
        });
      }
      await assert.rejects(readClientKeysFile(path.join(dir, "missing"), pool), /cannot be read/);
    });
  });
});

describe("admission of a named client's request", () => {
  const clients = parseClientKeys(
    `alpha=${a.exportKey()},${aOld.exportKey()}\nbeta=${b.exportKey()}`,
    "keys",
    pool,
  );
  const policy: AdmissionPolicy = {
    keyRing: pool,
    clients,
    models: ["demo"],
    limits: { maxTokensLimit: 512 },
    defaultMaxTokens: 64,
    maxRequestBytes: 64 * 1024,
    ttlSeconds: 3600,
    encryptOutput: "request",
  };
  const request = JSON.stringify({ prompt: "hello" });
  const codeOf = (input: unknown, admission = policy) => {
    try {
      admitRequest(input, admission);
      return "admitted";
    } catch (error) {
      return error instanceof PoolError ? `${error.code}: ${error.message}` : String(error);
    }
  };

  it("opens the token with the client's ring (an older key of it too) and keeps the ring", () => {
    const admitted = admitRequest({ client: "alpha", encrypted_input: a.encrypt(request) }, policy);
    assert.equal(admitted.client, "alpha");
    assert.ok(admitted.ring.primary.equals(a));
    const older = admitRequest({ client: "alpha", encrypted_input: aOld.encrypt(request) }, policy);
    assert.ok(older.ring.primary.equals(a), "outputs are sealed with the current key");
    const anonymous = admitRequest({ encrypted_input: pool.encrypt(request) }, policy);
    assert.equal(anonymous.client, undefined);
    assert.equal(anonymous.ring, pool);
  });

  it("refuses another's token, an unknown client and the pool's key the same way", () => {
    const badToken = codeOf({ encrypted_input: b.encrypt(request) });
    assert.match(badToken, /^DECRYPT_FAILED: /);
    for (const input of [
      { client: "alpha", encrypted_input: b.encrypt(request) },
      { client: "beta", encrypted_input: a.encrypt(request) },
      { client: "alpha", encrypted_input: pool.encrypt(request) },
      { client: "nobody", encrypted_input: a.encrypt(request) },
      { client: "", encrypted_input: a.encrypt(request) },
    ]) {
      assert.equal(codeOf(input), badToken, JSON.stringify(input.client));
    }
    assert.equal(
      codeOf(
        { client: "alpha", encrypted_input: a.encrypt(request) },
        { ...policy, clients: ClientKeys.none },
      ),
      badToken,
    );
    assert.match(codeOf({ client: 7, encrypted_input: a.encrypt(request) }), /^INVALID_INPUT: /);
  });
});
