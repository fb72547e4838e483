import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { type AdmissionPolicy, admitRequest } from "../../orchestrator/admission/admit-request.js";
import { FernetKey, KeyRing } from "../../shared/crypto/index.js";
import { PoolError } from "../../shared/errors/index.js";
import { maxSeed } from "../../shared/protocol/index.js";

const MARKER = "PROMPT-MARKER-a91f3c";

const keyRing = new KeyRing([FernetKey.generate()]);
const otherRing = new KeyRing([FernetKey.generate()]);

function policy(models: readonly string[] = ["demo"]): AdmissionPolicy {
  return {
    keyRing,
    models,
    limits: { maxTokensLimit: 512 },
    defaultMaxTokens: 64,
    maxRequestBytes: 64 * 1024,
    ttlSeconds: 3600,
    encryptOutput: "request",
  };
}

function sealed(request: unknown, ring: KeyRing = keyRing): { encrypted_input: string } {
  return { encrypted_input: ring.encrypt(JSON.stringify(request)) };
}

/** Asserts admitting `input` throws a coded error, returns its message; no marker may show. */
function assertRefused(input: unknown, code: string, admission = policy()): string {
  let caught: unknown;
  try {
    admitRequest(input, admission);
  } catch (error) {
    caught = error;
  }
  assert.ok(caught instanceof PoolError, `expected a PoolError, got ${String(caught)}`);
  assert.equal(caught.code, code, caught.message);
  assert.ok(!caught.message.includes(MARKER), `request data leaked: ${caught.message}`);
  assert.ok(!String(caught.stack).includes(MARKER), "request data leaked into the stack");
  return caught.message;
}

describe("admitRequest: the job input", () => {
  it("refuses input that is not an object", () => {
    for (const input of [undefined, null, MARKER, 42, [sealed({ prompt: MARKER })]]) {
      assertRefused(input, "INVALID_INPUT");
    }
  });

  it("refuses a plaintext request", () => {
    const message = assertRefused({ prompt: MARKER }, "INVALID_INPUT");
    assert.match(message, /encrypted_input/);
    assert.match(message, /plaintext requests are refused/);
  });

  it("refuses a field next to encrypted_input", () => {
    const input = { ...sealed({ prompt: "hi" }), prompt: MARKER };
    const message = assertRefused(input, "INVALID_INPUT");
    assert.match(message, /unknown field "prompt"/);
  });

  it("refuses an empty or non-string token", () => {
    assertRefused({ encrypted_input: "" }, "INVALID_INPUT");
    assertRefused({ encrypted_input: 12 }, "INVALID_INPUT");
    assertRefused({ encrypted_input: { prompt: MARKER } }, "INVALID_INPUT");
  });
});

describe("admitRequest: decryption", () => {
  it("refuses a garbage token", () => {
    assertRefused({ encrypted_input: `gAAAAA${MARKER}` }, "DECRYPT_FAILED");
    assertRefused({ encrypted_input: "not base64 at all!" }, "DECRYPT_FAILED");
  });

  it("refuses a token from another key", () => {
    assertRefused(sealed({ prompt: MARKER }, otherRing), "DECRYPT_FAILED");
  });

  it("refuses a tampered token", () => {
    const token = sealed({ prompt: MARKER }).encrypted_input;
    const middle = Math.floor(token.length / 2);
    const flipped = token[middle] === "A" ? "B" : "A";
    const tampered = token.slice(0, middle) + flipped + token.slice(middle + 1);
    assertRefused({ encrypted_input: tampered }, "DECRYPT_FAILED");
  });

  it("accepts a token from any key of the ring", () => {
    const rotated = new KeyRing([FernetKey.generate(), otherRing.primary]);
    const { task } = admitRequest(sealed({ prompt: "hi" }, otherRing), {
      ...policy(),
      keyRing: rotated,
    });
    assert.equal(task.model, "demo");
  });
});

describe("admitRequest: the decrypted request", () => {
  it("refuses bytes that are not UTF-8", () => {
    const token = keyRing.encrypt(Buffer.from([0x7b, 0xff, 0xfe, 0x7d]));
    const message = assertRefused({ encrypted_input: token }, "INVALID_REQUEST");
    assert.match(message, /UTF-8 JSON/);
  });

  it("refuses text that is not JSON", () => {
    const token = keyRing.encrypt(`prompt: ${MARKER}`);
    assertRefused({ encrypted_input: token }, "INVALID_REQUEST");
  });

  it("refuses JSON that is not a request object", () => {
    assertRefused(sealed([MARKER]), "INVALID_REQUEST");
    assertRefused(sealed(MARKER), "INVALID_REQUEST");
    assertRefused(sealed(null), "INVALID_REQUEST");
  });

  it("refuses a request breaking the schema, naming the field but not the value", () => {
    const message = assertRefused(
      sealed({ prompt: MARKER, sampling_params: { temperature: MARKER } }),
      "INVALID_REQUEST",
    );
    assert.match(message, /request\.sampling_params\.temperature/);
  });

  it("refuses a request with both prompt and messages", () => {
    assertRefused(
      sealed({ prompt: MARKER, messages: [{ role: "user", content: MARKER }] }),
      "INVALID_REQUEST",
    );
  });

  it("refuses max_tokens above the configured limit", () => {
    const message = assertRefused(
      sealed({ prompt: MARKER, sampling_params: { max_tokens: 513 } }),
      "INVALID_REQUEST",
    );
    assert.match(message, /max_tokens/);
  });
});

describe("admitRequest: the model", () => {
  it("refuses an unknown model without repeating its name", () => {
    const message = assertRefused(sealed({ model: MARKER, prompt: "hi" }), "UNKNOWN_MODEL", {
      ...policy(["alpha", "beta"]),
    });
    assert.match(message, /alpha, beta/);
  });

  it("refuses a model name differing only in case", () => {
    assertRefused(sealed({ model: "Demo", prompt: MARKER }), "UNKNOWN_MODEL");
  });

  it("uses the only served model when none is named", () => {
    const { task } = admitRequest(sealed({ prompt: "hi" }), policy(["solo"]));
    assert.equal(task.model, "solo");
  });

  it("requires a model when several are served", () => {
    const message = assertRefused(
      sealed({ prompt: MARKER }),
      "INVALID_REQUEST",
      policy(["a", "b"]),
    );
    assert.match(message, /request\.model: required/);
  });

  it("picks the named model among several", () => {
    const { task } = admitRequest(sealed({ model: "b", prompt: "hi" }), policy(["a", "b"]));
    assert.equal(task.model, "b");
  });
});

describe("admitRequest: an admitted request", () => {
  it("becomes a task with every default filled, and a seed drawn for it", () => {
    const { task } = admitRequest(sealed({ prompt: `Tell me ${MARKER}` }), policy());
    const { seed, ...sampling } = task.sampling;
    assert.ok(
      Number.isInteger(seed) && (seed ?? -1) >= 0 && (seed ?? 0) <= maxSeed,
      `seed ${seed}`,
    );
    const other = admitRequest(sealed({ prompt: `Tell me ${MARKER}` }), policy()).task.sampling
      .seed;
    assert.notEqual(other, seed, "two requests drew the same seed");
    assert.deepEqual(
      { ...task, sampling },
      {
        model: "demo",
        input: { kind: "prompt", prompt: `Tell me ${MARKER}` },
        sampling: {
          maxTokens: 64,
          temperature: 1,
          topP: 1,
          topK: 0,
          minP: 0,
          stop: [],
          repeatPenalty: 1,
          presencePenalty: 0,
          frequencyPenalty: 0,
        },
      },
    );
  });

  it("keeps the caller's messages and sampling", () => {
    const messages = [
      { role: "user", content: "Hi" },
      { role: "assistant", content: "Hel" },
    ];
    const { task } = admitRequest(
      sealed({ model: "demo", messages, sampling_params: { max_tokens: 5, stop: "\n", seed: 3 } }),
      policy(),
    );
    assert.deepEqual(task.input, { kind: "chat", messages });
    assert.equal(task.sampling.maxTokens, 5);
    assert.deepEqual(task.sampling.stop, ["\n"]);
    assert.equal(task.sampling.seed, 3);
  });

  it("carries n and logprobs into the task only when asked", () => {
    const asked = admitRequest(
      sealed({ prompt: "Hi", sampling_params: { n: 3, logprobs: 0 } }),
      policy(),
    );
    assert.equal(asked.task.sampling.n, 3);
    assert.equal(asked.task.sampling.logprobs, 0);
    const plain = admitRequest(sealed({ prompt: "Hi", sampling_params: { n: 1 } }), policy());
    assert.ok(!("n" in plain.task.sampling) && !("logprobs" in plain.task.sampling));
  });

  it("refuses more choices than a model thread has sequences, naming n and the limit", () => {
    const limited = { ...policy(), sequencesPerThread: () => 4 };
    admitRequest(sealed({ prompt: "Hi", sampling_params: { n: 4 } }), limited);
    const message = assertRefused(
      sealed({ prompt: MARKER, sampling_params: { n: 5 } }),
      "INVALID_REQUEST",
      limited,
    );
    assert.match(message, /request\.sampling_params\.n: must be at most 4 for model "demo"/);
    assert.match(
      assertRefused(sealed({ prompt: "Hi", sampling_params: { logprobs: 21 } }), "INVALID_REQUEST"),
      /sampling_params\.logprobs: must be at most 20/,
    );
  });
});

describe("admitRequest: size", () => {
  it("refuses a token longer than MAX_REQUEST_BYTES before decrypting it", () => {
    const admission = { ...policy(), maxRequestBytes: 4096 };
    const big = sealed({ prompt: MARKER.repeat(200) });
    assert.ok(big.encrypted_input.length > 4096);
    const message = assertRefused(big, "REQUEST_TOO_LARGE", admission);
    assert.match(message, /input\.encrypted_input/);
    assert.match(message, /MAX_REQUEST_BYTES/);
    // Even a token no key can open is refused for its size, not decrypted.
    assertRefused({ encrypted_input: "A".repeat(4097) }, "REQUEST_TOO_LARGE", admission);
  });

  it("admits a request just under the cap", () => {
    const admission = { ...policy(), maxRequestBytes: 4096 };
    const input = sealed({ prompt: "x".repeat(2000) });
    assert.ok(input.encrypted_input.length <= 4096);
    assert.equal(admitRequest(input, admission).task.model, "demo");
  });
});

describe("admitRequest: the replay window", () => {
  const now = 1_800_000_000;
  const at = (seconds: number) => ({
    encrypted_input: keyRing.encrypt(JSON.stringify({ prompt: MARKER }), { now: seconds }),
  });
  const windowed = (ttlSeconds: number) => ({ ...policy(), ttlSeconds, now: () => now * 1000 });

  it("admits a token inside the window, and one 60 s in the future", () => {
    assert.equal(admitRequest(at(now - 60), windowed(60)).task.model, "demo");
    assert.equal(admitRequest(at(now + 60), windowed(60)).task.model, "demo");
  });

  it("refuses an older token with TOKEN_EXPIRED", () => {
    const message = assertRefused(at(now - 61), "TOKEN_EXPIRED", windowed(60));
    assert.match(message, /FERNET_TTL_SECONDS/);
  });

  it("refuses a token more than 60 s in the future with TOKEN_EXPIRED", () => {
    const message = assertRefused(at(now + 61), "TOKEN_EXPIRED", windowed(3600));
    assert.match(message, /future/);
  });

  it("checks no time when FERNET_TTL_SECONDS is 0", () => {
    assert.equal(admitRequest(at(1), windowed(0)).task.model, "demo");
    assert.equal(admitRequest(at(now + 10 ** 6), windowed(0)).task.model, "demo");
  });

  it("says DECRYPT_FAILED, not TOKEN_EXPIRED, for an old token of another key", () => {
    const foreign = {
      encrypted_input: otherRing.encrypt(JSON.stringify({ prompt: MARKER }), { now: 1 }),
    };
    assertRefused(foreign, "DECRYPT_FAILED", windowed(60));
  });

  it("refuses a tampered timestamp as DECRYPT_FAILED (the MAC covers it)", () => {
    const token = at(now - 3600).encrypted_input;
    const bytes = Buffer.from(token, "base64url");
    bytes.writeBigUInt64BE(BigInt(now), 1);
    const forged = bytes.toString("base64url");
    assertRefused({ encrypted_input: forged }, "DECRYPT_FAILED", windowed(60));
  });
});

describe("admitRequest: encrypted output", () => {
  it("encrypts when the request asks and ENCRYPT_OUTPUT=request", () => {
    assert.equal(admitRequest(sealed({ prompt: "hi" }), policy()).encryptOutput, false);
    const asked = admitRequest(sealed({ prompt: "hi", encrypt_output: true }), policy());
    assert.equal(asked.encryptOutput, true);
    assert.equal("encrypt_output" in asked.task, false, "the gpu-worker never sees it");
    const declined = admitRequest(sealed({ prompt: "hi", encrypt_output: false }), policy());
    assert.equal(declined.encryptOutput, false);
  });

  it("encrypts every job when ENCRYPT_OUTPUT=always", () => {
    const always = { ...policy(), encryptOutput: "always" as const };
    assert.equal(admitRequest(sealed({ prompt: "hi" }), always).encryptOutput, true);
    const declined = sealed({ prompt: "hi", encrypt_output: false });
    assert.equal(admitRequest(declined, always).encryptOutput, true);
  });

  it("refuses a request asking for it when ENCRYPT_OUTPUT=never, rather than answer in plaintext", () => {
    const never = { ...policy(), encryptOutput: "never" as const };
    const message = assertRefused(
      sealed({ prompt: MARKER, encrypt_output: true }),
      "INVALID_REQUEST",
      never,
    );
    assert.match(message, /request\.encrypt_output/);
    assert.equal(admitRequest(sealed({ prompt: "hi" }), never).encryptOutput, false);
  });

  it("names a non-boolean encrypt_output by path", () => {
    const message = assertRefused(
      sealed({ prompt: "hi", encrypt_output: MARKER }),
      "INVALID_REQUEST",
    );
    assert.match(message, /request\.encrypt_output: must be true or false/);
  });
});

describe("admitRequest: hostile shapes", () => {
  it("refuses deep nesting without a crash", () => {
    const roomy = { ...policy(), maxRequestBytes: 10 * 1024 * 1024 };
    const deep = `${"[".repeat(100_000)}${"]".repeat(100_000)}`;
    assertRefused({ encrypted_input: keyRing.encrypt(deep) }, "INVALID_REQUEST", roomy);
    const deepPrompt = `{"prompt": ${"[".repeat(50_000)}${"]".repeat(50_000)}}`;
    const message = assertRefused(
      { encrypted_input: keyRing.encrypt(deepPrompt) },
      "INVALID_REQUEST",
      roomy,
    );
    assert.match(message, /request\.prompt/);
  });

  it("bounds messages and stop lists, naming the field", () => {
    const messages = Array.from({ length: 1025 }, () => ({ role: "user", content: MARKER }));
    const roomy = { ...policy(), maxRequestBytes: 1024 * 1024 };
    assert.match(
      assertRefused(sealed({ messages }), "INVALID_REQUEST", roomy),
      /request\.messages/,
    );
    const stop = Array.from({ length: 17 }, () => MARKER);
    const message = assertRefused(
      sealed({ prompt: "hi", sampling_params: { stop } }),
      "INVALID_REQUEST",
    );
    assert.match(message, /request\.sampling_params\.stop/);
  });

  it("names fields under keys that are not field names without quoting the key", () => {
    const message = assertRefused(sealed({ prompt: "hi", [`${MARKER} x`]: 1 }), "INVALID_REQUEST");
    assert.match(message, /unknown field \(unnamed\)/);
  });
});
