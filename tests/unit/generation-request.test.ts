import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  describeIssues,
  drawSeed,
  type GenerationRequest,
  generationRequestSchema,
  generationTaskSchema,
  maxSeed,
  toGenerationTask,
} from "../../shared/protocol/index.js";

const limits = { maxTokensLimit: 1000 };
const schema = generationRequestSchema(limits);

/** A value no schema message could contain by chance. */
const MARKER = "SECRET-PROMPT-MARKER-5c1e";

function parse(value: unknown) {
  return schema.safeParse(value);
}

/** The error message for `value`, which must be invalid. */
function messageFor(value: unknown): string {
  const result = parse(value);
  assert.equal(result.success, false, `expected ${JSON.stringify(value)} to be refused`);
  return result.success ? "" : describeIssues(result.error.issues);
}

function withSampling(sampling: Record<string, unknown>): unknown {
  return { prompt: "Once upon a time", sampling_params: sampling };
}

describe("generationRequestSchema: valid requests", () => {
  it("accepts a prompt request", () => {
    const result = parse({ model: "demo", prompt: "Hello" });
    assert.ok(result.success);
    assert.equal(result.data.prompt, "Hello");
    assert.equal(result.data.model, "demo");
  });

  it("accepts a messages request ending with an assistant message (continued)", () => {
    const messages = [
      { role: "system", content: "Be brief." },
      { role: "user", content: "Hi" },
      { role: "assistant", content: "Hello, I" },
    ];
    const result = parse({ messages });
    assert.ok(result.success);
    assert.deepEqual(result.data.messages, messages);
  });

  it("accepts every sampling field at its bounds", () => {
    const sampling = {
      max_tokens: 1000,
      temperature: 2,
      top_p: 1,
      top_k: -1,
      min_p: 1,
      seed: 4_294_967_295,
      stop: Array.from({ length: 16 }, (_, i) => `s${i}`.padEnd(256, "x")),
      repeat_penalty: 10,
      presence_penalty: -2,
      frequency_penalty: 2,
    };
    const result = parse(withSampling(sampling));
    assert.ok(result.success, result.success ? "" : describeIssues(result.error.issues));
    assert.deepEqual(result.data.sampling_params, sampling);
  });

  it("accepts null for every sampling field, meaning the default", () => {
    const fields = [
      "max_tokens",
      "temperature",
      "top_p",
      "top_k",
      "min_p",
      "seed",
      "stop",
      "repeat_penalty",
      "presence_penalty",
      "frequency_penalty",
    ];
    const sampling = Object.fromEntries(fields.map((field) => [field, null]));
    const result = parse(withSampling(sampling));
    assert.ok(result.success);
    const task = toGenerationTask(result.data, "demo", { maxTokens: 77, seed: () => 5 });
    const defaults = toGenerationTask({ prompt: "Once upon a time" } as GenerationRequest, "demo", {
      maxTokens: 77,
      seed: () => 5,
    });
    assert.deepEqual(task, defaults);
  });
});

describe("generationRequestSchema: prompt or messages", () => {
  it("refuses a request with neither", () => {
    assert.match(messageFor({ model: "demo" }), /^request: needs either "prompt" or "messages"/);
  });

  it("refuses a request with both", () => {
    const message = messageFor({ prompt: "a", messages: [{ role: "user", content: "b" }] });
    assert.match(message, /not both/);
  });

  it("refuses an empty prompt and an empty messages list", () => {
    assert.match(messageFor({ prompt: "" }), /request\.prompt: must not be empty/);
    assert.match(messageFor({ messages: [] }), /request\.messages: must hold at least one message/);
  });

  it("refuses bad messages, naming their index", () => {
    const message = messageFor({
      messages: [
        { role: "user", content: "ok" },
        { role: "robot", content: 5 },
      ],
    });
    assert.match(
      message,
      /request\.messages\[1\]\.role: must be "system", "user", "assistant" or "tool"/,
    );
    assert.match(message, /request\.messages\[1\]\.content: must be a string/);
  });

  it("refuses a non-object request", () => {
    for (const value of [null, "text", 42, [], true]) {
      assert.match(messageFor(value), /^request: /, JSON.stringify(value));
    }
  });
});

describe("generationRequestSchema: sampling ranges and types", () => {
  const cases: Array<[field: string, value: unknown, expected: RegExp]> = [
    ["max_tokens", 0, /at least 1/],
    ["max_tokens", 1.5, /whole number/],
    ["max_tokens", 1001, /at most 1000/],
    ["max_tokens", "10", /whole number in \[1, 1000\]/],
    ["temperature", -1, /in \[0, 2\]/],
    ["temperature", 3, /in \[0, 2\]/],
    ["temperature", "hot", /in \[0, 2\]/],
    ["top_p", 0, /in \(0, 1\]/],
    ["top_p", 1.1, /in \(0, 1\]/],
    ["top_k", -2, />= -1/],
    ["top_k", 2.5, /whole number/],
    ["min_p", 2, /in \[0, 1\]/],
    ["min_p", -0.1, /in \[0, 1\]/],
    ["seed", -1, /\[0, 4294967295\]/],
    ["seed", 2 ** 32, /\[0, 4294967295\]/],
    ["seed", 1.5, /whole number/],
    ["stop", "", /must not be empty/],
    ["stop", "x".repeat(300), /at most 256 characters/],
    ["stop", Array.from({ length: 17 }, () => "a"), /string or an array of strings/],
    ["stop", 7, /string or an array of strings/],
    ["repeat_penalty", 0, /in \(0, 10\]/],
    ["repeat_penalty", 11, /in \(0, 10\]/],
    ["presence_penalty", -3, /in \[-2, 2\]/],
    ["presence_penalty", 2.5, /in \[-2, 2\]/],
    ["frequency_penalty", -2.01, /in \[-2, 2\]/],
    ["frequency_penalty", true, /in \[-2, 2\]/],
  ];
  for (const [field, value, expected] of cases) {
    const label = typeof value === "string" && value.length > 20 ? `${value.length} chars` : value;
    it(`refuses ${field} = ${JSON.stringify(label)}`, () => {
      const message = messageFor(withSampling({ [field]: value }));
      assert.ok(
        message.startsWith(`request.sampling_params.${field}: `),
        `wrong path in: ${message}`,
      );
      assert.match(message, expected);
    });
  }

  it("names the index of a bad stop string in an array", () => {
    const message = messageFor(withSampling({ stop: ["ok", ""] }));
    assert.match(message, /request\.sampling_params\.stop\[1\]: must not be empty/);
  });

  it("accepts stop as a string and as an array", () => {
    assert.ok(parse(withSampling({ stop: "\n" })).success);
    assert.ok(parse(withSampling({ stop: ["\n", "END"] })).success);
  });

  it("checks max_tokens against the configured limit", () => {
    const small = generationRequestSchema({ maxTokensLimit: 8 });
    assert.ok(small.safeParse(withSampling({ max_tokens: 8 })).success);
    assert.equal(small.safeParse(withSampling({ max_tokens: 9 })).success, false);
  });
});

describe("generationRequestSchema: unknown fields", () => {
  it("refuses unknown top-level and sampling fields, naming safe keys", () => {
    assert.match(messageFor({ prompt: "a", stream: true }), /request: unknown field "stream"/);
    assert.match(
      messageFor(withSampling({ best_of: 2, use_beam_search: true })),
      /request\.sampling_params: unknown fields "best_of", "use_beam_search"/,
    );
    assert.match(
      messageFor({ messages: [{ role: "user", content: "a", name: "x" }] }),
      /request\.messages\[0\]: unknown field "name"/,
    );
  });
});

describe("describeIssues never shows values", () => {
  const bad: Array<[label: string, value: unknown]> = [
    ["a string where a number goes", withSampling({ temperature: MARKER })],
    ["a too-long stop string", withSampling({ stop: MARKER.repeat(20) })],
    ["a bad stop array", withSampling({ stop: [MARKER, 3] })],
    ["a too-long model name", { model: MARKER.repeat(10), prompt: "a" }],
    ["a bad role", { messages: [{ role: MARKER, content: "a" }] }],
    ["a non-string content", { messages: [{ role: "user", content: [MARKER] }] }],
    ["a non-object request", MARKER],
    ["a prompt of the wrong type", { prompt: { text: MARKER } }],
    ["an unknown key with spaces", { prompt: "a", [`${MARKER} and more`]: 1 }],
    ["an unknown key with spaces in sampling", withSampling({ [`${MARKER} x`]: MARKER })],
    [
      "an unknown key with spaces in a message",
      { messages: [{ role: "user", content: "a", [`${MARKER} y`]: 1 }] },
    ],
    ["an unknown key full of punctuation", { prompt: "a", [`"${MARKER}":`]: 1 }],
    [
      "a marker in both value and key",
      { prompt: MARKER, messages: MARKER, [`${MARKER} z`]: MARKER },
    ],
  ];
  for (const [label, value] of bad) {
    it(`for ${label}`, () => {
      const message = messageFor(value);
      assert.ok(message.length > 0);
      assert.ok(!message.includes(MARKER), `the value leaked: ${message}`);
      assert.ok(!message.includes(MARKER.slice(0, 10)), `part of the value leaked: ${message}`);
    });
  }

  it("marks an unsafe unknown key as unnamed", () => {
    assert.equal(
      messageFor({ prompt: "a", [`${MARKER} k`]: 1 }),
      "request: unknown field (unnamed)",
    );
  });

  it("writes unsafe path parts as (field)", () => {
    const issue = {
      code: "custom",
      path: ["messages", `${MARKER} p`, 0],
      message: "bad",
      input: 1,
    };
    const message = describeIssues([issue as never], "request");
    assert.equal(message, "request.messages.(field)[0]: bad");
  });

  it("lists at most ten issues and counts the rest", () => {
    const messages = Array.from({ length: 13 }, () => ({ role: "robot", content: "a" }));
    const message = messageFor({ messages });
    assert.equal(message.split("; ").length, 11);
    assert.match(message, /; and 3 more$/);
  });
});

describe("toGenerationTask", () => {
  it("fills vLLM's defaults and the configured max_tokens", () => {
    const result = parse({ prompt: "Hi" });
    assert.ok(result.success);
    const task = toGenerationTask(result.data, "demo", { maxTokens: 256, seed: () => 1234 });
    assert.deepEqual(task, {
      model: "demo",
      input: { kind: "prompt", prompt: "Hi" },
      sampling: {
        maxTokens: 256,
        temperature: 1,
        topP: 1,
        topK: 0,
        minP: 0,
        seed: 1234,
        stop: [],
        repeatPenalty: 1,
        presencePenalty: 0,
        frequencyPenalty: 0,
      },
    });
    assert.ok(generationTaskSchema.safeParse(task).success);
  });

  it("draws a seed for a missing or null seed, and keeps a given one, zero included", () => {
    const draw = () => 99;
    const nullSeed = parse(withSampling({ seed: null }));
    assert.ok(nullSeed.success);
    assert.equal(
      toGenerationTask(nullSeed.data, "m", { maxTokens: 1, seed: draw }).sampling.seed,
      99,
    );
    const zeroSeed = parse(withSampling({ seed: 0 }));
    assert.ok(zeroSeed.success);
    assert.equal(
      toGenerationTask(zeroSeed.data, "m", { maxTokens: 1, seed: draw }).sampling.seed,
      0,
    );
  });

  it("draws seeds that differ: requests sent together sample differently", () => {
    const seeds = new Set(Array.from({ length: 1000 }, () => drawSeed()));
    assert.ok(seeds.size >= 999, `${seeds.size} distinct seeds of 1000`);
    for (const seed of seeds) assert.ok(Number.isInteger(seed) && seed >= 0 && seed <= maxSeed);
  });

  it("turns a stop string into a one-element array and keeps arrays", () => {
    const single = parse(withSampling({ stop: "END" }));
    assert.ok(single.success);
    assert.deepEqual(
      toGenerationTask(single.data, "m", { maxTokens: 1, seed: drawSeed }).sampling.stop,
      ["END"],
    );
    const several = parse(withSampling({ stop: ["a", "b"] }));
    assert.ok(several.success);
    assert.deepEqual(
      toGenerationTask(several.data, "m", { maxTokens: 1, seed: drawSeed }).sampling.stop,
      ["a", "b"],
    );
  });

  it("maps given sampling values to the library's names", () => {
    const result = parse(
      withSampling({
        max_tokens: 12,
        temperature: 0,
        top_p: 0.9,
        top_k: 40,
        min_p: 0.05,
        seed: 7,
        repeat_penalty: 1.1,
        presence_penalty: 0.5,
        frequency_penalty: -0.5,
      }),
    );
    assert.ok(result.success);
    assert.deepEqual(
      toGenerationTask(result.data, "m", { maxTokens: 99, seed: drawSeed }).sampling,
      {
        maxTokens: 12,
        temperature: 0,
        topP: 0.9,
        topK: 40,
        minP: 0.05,
        seed: 7,
        stop: [],
        repeatPenalty: 1.1,
        presencePenalty: 0.5,
        frequencyPenalty: -0.5,
      },
    );
  });

  it("makes a chat input from messages", () => {
    const messages = [{ role: "user" as const, content: "Hi" }];
    const result = parse({ messages });
    assert.ok(result.success);
    assert.deepEqual(toGenerationTask(result.data, "m", { maxTokens: 1, seed: drawSeed }).input, {
      kind: "chat",
      messages,
    });
  });
});
