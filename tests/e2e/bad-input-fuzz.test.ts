/**
 * Bad input cannot harm the service: over a thousand generated requests against the real HTTP API
 * (malformed JSON, binary garbage, wrong types, huge values, missing fields, truncated, tampered,
 * wrong-key and expired tokens, deep nesting, unicode edge cases). Each one gets HTTP 400 / 413
 * (a body the API cannot take) or a coded FAILED; no response echoes the request; the processes
 * stay up; nothing is queued; and a good request afterwards still works. The generator is seeded
 * (`FUZZ_SEED`): a failure names its seed and case, and reproduces.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { Redis } from "ioredis";
import { createSeededRandom } from "../../gpu-worker/models/gguf/seeded-random.js";
import { FernetKey } from "../../shared/crypto/index.js";
import { ErrorCode } from "../../shared/errors/index.js";
import { tinyModelPath } from "../support/models.js";
import { keysWithPrefix, queueKey } from "../support/redis.js";
import { TestStack, textOf } from "../support/stack.js";

const seed = Number(process.env.FUZZ_SEED ?? 20261126);
const caseCount = 1200;
const maxRequestBytes = 65536;
// Not shaped like a field name: describeIssues names unknown keys only when they look like one.
const marker = "FUZZ-MARK";

/** What a case must get back. */
type Expect = { http: readonly number[] } | { code: readonly string[] };

interface FuzzCase {
  label: string;
  /** The raw HTTP body. */
  body: string | Uint8Array;
  contentType?: string;
  route: "/run" | "/runsync";
  expect: Expect;
}

type Random = () => number;

describe("bad input fuzz", () => {
  let stack: TestStack;
  let redis: Redis;
  const otherKey = FernetKey.generate();

  before(async () => {
    stack = await TestStack.start({
      models: `tiny=${await tinyModelPath()}`,
      env: {
        MAX_REQUEST_BYTES: String(maxRequestBytes),
        FERNET_TTL_SECONDS: "300",
        MAX_TOKENS_LIMIT: "512",
        CONTEXT_SIZE: "256",
      },
      label: "fuzz",
    });
    redis = new Redis(stack.redisUrl);
  });

  after(async () => {
    redis?.disconnect();
    await stack?.stop();
  });

  const pick = <T>(random: Random, items: readonly T[]): T =>
    items[Math.floor(random() * items.length)] as T;
  const int = (random: Random, min: number, max: number) =>
    min + Math.floor(random() * (max - min + 1));

  const weirdStrings = [
    "",
    marker,
    "\u0000",
    "\ud800",
    "\udfff\ud800",
    "\u202e\u200b\ufeff",
    "😀".repeat(50),
    "e\u0301".repeat(20),
    "\\",
    '"',
    "</script>",
    "%s%n%x",
    "../../etc/passwd",
    "A".repeat(300),
  ];
  const weirdValues = (random: Random): unknown[] => [
    null,
    true,
    false,
    0,
    -1,
    1e308,
    -1e308,
    2 ** 53 + 1,
    0.5,
    -0.0,
    pick(random, weirdStrings),
    [],
    {},
    [pick(random, weirdStrings)],
    { [marker]: marker },
  ];
  const nested = (depth: number, open = "[", close = "]") =>
    `${open.repeat(depth)}${close.repeat(depth)}`;

  function sealed(plaintext: string | Uint8Array, options: { now?: number } = {}): string {
    return stack.keyRing.encrypt(plaintext, options);
  }
  const inputBody = (token: unknown) => JSON.stringify({ input: { encrypted_input: token } });
  const requestBody = (request: unknown) => inputBody(sealed(JSON.stringify(request)));

  /** A request that breaks the schema in one generated way (never a valid one). */
  function badRequest(random: Random): unknown {
    const sampling = [
      "max_tokens",
      "temperature",
      "top_p",
      "top_k",
      "min_p",
      "seed",
      "repeat_penalty",
      "presence_penalty",
      "frequency_penalty",
    ];
    const outOfRange: Record<string, unknown[]> = {
      max_tokens: [0, -5, 513, 1e12, 1.5, "10", Number.MAX_VALUE],
      temperature: [-0.1, 2.01, "0.5", 1e9, [], {}],
      top_p: [0, 1.5, -1, "1"],
      top_k: [-2, 100_001, 0.5, "3"],
      min_p: [-0.1, 1.1, "0"],
      seed: [-1, 4_294_967_296, 1.5, "7"],
      repeat_penalty: [0, 10.5, -1],
      presence_penalty: [-2.5, 3],
      frequency_penalty: [-3, 2.5],
    };
    switch (int(random, 0, 15)) {
      case 0:
        return pick(random, weirdValues(random)); // not an object
      case 1:
        return {}; // neither prompt nor messages
      case 2:
        return { prompt: marker, messages: [{ role: "user", content: marker }] };
      case 3:
        return { prompt: pick(random, [null, 1, [], {}, true, ""]) };
      case 4: {
        const field = pick(random, sampling);
        return {
          prompt: marker,
          sampling_params: { [field]: pick(random, outOfRange[field] ?? [null]) },
        };
      }
      case 5:
        return { prompt: marker, sampling_params: pick(random, [1, "x", [], true]) };
      case 6:
        return {
          prompt: marker,
          [pick(random, ["promt", marker, "\ud800", "a b", "__proto__"])]: 1,
        };
      case 7:
        return { prompt: marker, sampling_params: { stop: pick(random, stopsBad(random)) } };
      case 8:
        return { messages: pick(random, messagesBad(random)) };
      case 9:
        return { model: pick(random, ["", "nope", marker, "x".repeat(200), 5]), prompt: marker };
      case 10:
        return { prompt: marker, encrypt_output: pick(random, ["yes", 1, [], {}]) };
      case 11:
        return { prompt: marker, sampling_params: { unknown_param: 1 } };
      case 12:
        return { prompt: JSON.parse(nested(int(random, 100, 3000))) as unknown };
      case 13:
        return { prompt: marker, sampling_params: { max_tokens: "Infinity" } };
      case 14:
        return { messages: [], prompt: marker };
      default:
        return { prompt: { text: marker } };
    }
  }

  function stopsBad(random: Random): unknown[] {
    return [
      "",
      "x".repeat(257),
      Array.from({ length: 17 }, () => "s"),
      [1],
      [""],
      [null],
      { stop: marker },
      Array.from({ length: int(random, 1, 3) }, () => "y".repeat(300)),
    ];
  }

  function messagesBad(random: Random): unknown[] {
    return [
      [],
      {},
      marker,
      [{ role: "robot", content: marker }],
      [{ role: "user" }],
      [{ content: marker }],
      [{ role: "user", content: 5 }],
      [{ role: "user", content: marker, name: "x" }],
      [null],
      Array.from({ length: 1025 }, () => ({ role: "user", content: "m" })),
      Array.from({ length: int(random, 1, 4) }, () => pick(random, weirdValues(random))),
    ];
  }

  function tamper(random: Random, token: string): string {
    const at = int(random, 0, token.length - 1);
    const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let replacement = pick(random, [...alphabet]);
    if (replacement === token[at]) replacement = token[at] === "A" ? "B" : "A";
    return token.slice(0, at) + replacement + token.slice(at + 1);
  }

  function generate(random: Random, index: number): FuzzCase {
    const route = random() < 0.8 ? "/run" : "/runsync";
    const good = () => JSON.stringify({ prompt: marker, sampling_params: { max_tokens: 2 } });
    const kind = index % 12;
    switch (kind) {
      case 0: {
        // Malformed JSON: a valid body cut short, or with a byte changed to a brace.
        const body = requestBody({ prompt: marker });
        const cut = body.slice(0, int(random, 1, body.length - 1));
        return { label: "truncated JSON body", body: cut, route, expect: { http: [400] } };
      }
      case 1: {
        const bytes = new Uint8Array(int(random, 1, 2048)).map(() => int(random, 0, 255));
        if (bytes[0] === 0x7b || bytes[0] === 0x5b || bytes[0] === 0x22) bytes[0] = 0x00;
        return { label: "binary garbage", body: bytes, route, expect: { http: [400] } };
      }
      case 2: {
        const bodies = [
          "",
          "null",
          "42",
          '"x"',
          "[]",
          "{}",
          JSON.stringify({ prompt: marker }),
          JSON.stringify({ inputs: {} }),
          `{"input": ${nested(int(random, 1000, 20000))}`,
          nested(int(random, 1000, 10000), '{"a":', "}"),
        ];
        return {
          label: "body without input",
          body: pick(random, bodies),
          route,
          expect: { http: [400] },
        };
      }
      case 3: {
        const huge = pick(random, [
          inputBody("A".repeat(maxRequestBytes + int(random, 1, 5000))),
          JSON.stringify({ input: { encrypted_input: "x" }, pad: "p".repeat(maxRequestBytes) }),
        ]);
        return { label: "body over the cap", body: huge, route, expect: { http: [413] } };
      }
      case 4: {
        if (random() < 0.15) {
          return {
            label: "input of the wrong shape",
            body: `{"input": ${nested(int(random, 1000, 30000))}}`,
            route,
            expect: { code: [ErrorCode.INVALID_INPUT] },
          };
        }
        const input = pick(random, [
          ...weirdValues(random),
          {},
          {
            encrypted_input: pick(
              random,
              weirdValues(random).filter((v) => typeof v !== "string"),
            ),
          },
          { encrypted_input: "" },
          { encrypted_input: sealed(good()), prompt: marker },
          { prompt: marker },
          { encrypted_input: { nested: nested(int(random, 10, 500)) } },
        ]);
        return {
          label: "input of the wrong shape",
          body: JSON.stringify({ input: input ?? null }),
          route,
          // `input: null` is a present input (INVALID_INPUT); only undefined is a missing one.
          expect: { code: [ErrorCode.INVALID_INPUT] },
        };
      }
      case 5: {
        const token = sealed(good());
        const variants = [
          // Cut into the data: dropping only the padding leaves the same (valid) token.
          token.slice(0, int(random, 1, token.replace(/=+$/, "").length - 1)),
          tamper(random, token),
          `${token}${pick(random, ["A", "AAAA", "=", "==", "\n", " "])}`,
          token.replace(/=+$/, "=="),
          token.replaceAll("-", "+").replaceAll("_", "/"),
          `${marker}${token}`,
          pick(
            random,
            weirdStrings.filter((s) => s !== ""),
          ),
        ];
        const variant = pick(random, variants);
        return {
          label: "truncated or tampered token",
          body: inputBody(variant === token ? `${token}x` : variant),
          route,
          expect: { code: [ErrorCode.DECRYPT_FAILED] },
        };
      }
      case 6:
        return {
          label: "token of another key",
          body: inputBody(otherKey.encrypt(good())),
          route,
          expect: { code: [ErrorCode.DECRYPT_FAILED] },
        };
      case 7: {
        const now = Math.floor(Date.now() / 1000);
        const when =
          random() < 0.5 ? now - int(random, 400, 10 ** 8) : now + int(random, 120, 10 ** 6);
        return {
          label: "expired or future token",
          body: inputBody(sealed(good(), { now: when })),
          route,
          expect: { code: [ErrorCode.TOKEN_EXPIRED] },
        };
      }
      case 8: {
        const plaintexts: (string | Uint8Array)[] = [
          new Uint8Array([0x7b, 0xff, 0xfe, 0x7d]),
          new Uint8Array(int(random, 1, 300)).map(() => int(random, 128, 255)),
          `prompt: ${marker}`,
          `{"prompt": "${marker}"`,
          "",
          "\ufeff{}",
          "NaN",
          nested(int(random, 1000, 20000)),
        ];
        return {
          label: "decrypts to non-JSON or garbage",
          body: inputBody(sealed(pick(random, plaintexts))),
          route,
          expect: { code: [ErrorCode.INVALID_REQUEST] },
        };
      }
      case 9:
      case 10: {
        const request = badRequest(random);
        return {
          label: "request breaking the schema",
          body: requestBody(request),
          route,
          expect: { code: [ErrorCode.INVALID_REQUEST, ErrorCode.UNKNOWN_MODEL] },
        };
      }
      default: {
        const contentType = pick(random, [
          "text/plain",
          "application/x-www-form-urlencoded",
          "application/octet-stream",
        ]);
        return {
          label: "wrong content type",
          body: requestBody({ prompt: marker }),
          contentType,
          route,
          // Fastify reads text/plain as a string (then: no input, 400); other types are 415.
          expect: { http: [400, 415] },
        };
      }
    }
  }

  async function send(fuzz: FuzzCase): Promise<{ status: number; body: string }> {
    const response = await fetch(`${stack.url}${fuzz.route}?wait=1000`, {
      method: "POST",
      headers: { "content-type": fuzz.contentType ?? "application/json" },
      body: fuzz.body,
    });
    return { status: response.status, body: await response.text() };
  }

  function check(fuzz: FuzzCase, index: number, status: number, body: string): void {
    const sent = typeof fuzz.body === "string" ? fuzz.body : `${fuzz.body.length} binary bytes`;
    const where = `seed ${seed} case ${index} (${fuzz.label}): HTTP ${status} ${body.slice(0, 300)} for ${sent.slice(0, 200)}…${sent.slice(-60)}`;
    assert.ok(!body.includes(marker), `the response echoes the request: ${where}`);
    if (typeof fuzz.body === "string" && nestingDepth(fuzz.body) > 64) {
      // Refused while the body arrives, whatever else is wrong with it.
      assert.equal(status, 400, where);
      assert.match(body, /deeper than 64 levels/, where);
      return;
    }
    const expect = fuzz.expect;
    if ("http" in expect) {
      assert.ok(expect.http.includes(status), where);
      const parsed = JSON.parse(body) as { error?: unknown };
      assert.equal(typeof parsed.error, "string", where);
      return;
    }
    assert.equal(status, 200, where);
    const parsed = JSON.parse(body) as { status: string; error?: string };
    assert.equal(parsed.status, "FAILED", where);
    assert.ok(parsed.error, where);
    const error = JSON.parse(parsed.error) as { code: string; message: string };
    assert.ok(expect.code.includes(error.code), `expected ${expect.code.join("|")}: ${where}`);
    assert.equal(typeof error.message, "string", where);
  }

  it(`answers ${caseCount} generated bad requests with 400/413/415 or a coded FAILED, queueing nothing`, async () => {
    const eventsKey = queueKey(stack.names, "tiny", "events");
    const lastEvent = (await redis.xrevrange(eventsKey, "+", "-", "COUNT", 1))[0]?.[0] ?? "0-0";
    const random = createSeededRandom(seed).next;
    const cases = Array.from({ length: caseCount }, (_, index) => generate(random, index));
    const counts = new Map<string, number>();
    const batch = 16;
    for (let start = 0; start < cases.length; start += batch) {
      const slice = cases.slice(start, start + batch);
      const answers = await Promise.all(slice.map(send));
      for (const [offset, answer] of answers.entries()) {
        const fuzz = slice[offset] as FuzzCase;
        check(fuzz, start + offset, answer.status, answer.body);
        counts.set(fuzz.label, (counts.get(fuzz.label) ?? 0) + 1);
      }
    }
    assert.equal(counts.size, 11, "every kind of case ran");
    assert.deepEqual(stack.exitCodes, [null, null], "both processes are still up");

    // Nothing reached a queue: no "added" event since the start, no job keys.
    const events = await redis.xrange(eventsKey, `(${lastEvent}`, "+");
    const added = events.filter(([, fields]) => fields.includes("added"));
    assert.deepEqual(added, [], "no job was added to the queue");
    const keys = await keysWithPrefix(stack.redisUrl, stack.prefix);
    assert.deepEqual(
      keys.filter((key) => /:\{model-tiny\}:[0-9a-f-]{36}$/.test(key) || key.includes(":deltas:")),
      [],
    );
    const health = (await stack.get("/health")) as { models: { queue: { waiting: number } }[] };
    assert.equal(health.models[0]?.queue.waiting, 0);
  });

  it("serves a good request afterwards", async () => {
    const view = await stack.runsync({
      prompt: "Once upon a time",
      sampling_params: { max_tokens: 8, temperature: 0 },
    });
    assert.equal(view.status, "COMPLETED");
    assert.ok(textOf(view.output ?? []).length > 0);
  });
});

/** How deep a JSON text's arrays and objects nest (brackets outside strings). */
function nestingDepth(text: string): number {
  let depth = 0;
  let deepest = 0;
  let inString = false;
  for (let index = 0; index < text.length; index += 1) {
    const char = text[index];
    if (inString) {
      if (char === "\\") index += 1;
      else if (char === '"') inString = false;
    } else if (char === '"') inString = true;
    else if (char === "[" || char === "{") deepest = Math.max(deepest, ++depth);
    else if (char === "]" || char === "}") depth -= 1;
  }
  return deepest;
}
