/**
 * Embeddings requests: OpenAI's `/v1/embeddings` body as the pool's request (string or array
 * input, `encoding_format`, `dimensions`, `user`), the native request's `input`, the task it
 * becomes, the admission refusal for a model without the `embeddings` setting, and OpenAI's answer
 * built from a final chunk (float and little-endian float32 base64).
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { type AdmissionPolicy, admitRequest } from "../../orchestrator/admission/admit-request.js";
import { FernetKey, KeyRing } from "../../shared/crypto/index.js";
import { PoolError } from "../../shared/errors/index.js";
import {
  base64OfVector,
  OpenAiAnswer,
  openAiJobSchema,
  readOpenAiBody,
} from "../../shared/openai/index.js";
import {
  type FinalChunk,
  generationRequestSchema,
  maxEmbeddingInputs,
  promptBytes,
  toGenerationTask,
} from "../../shared/protocol/index.js";

const marker = "EMBED-MARKER-5c1f";
const keyRing = new KeyRing([FernetKey.generate()]);
const policy: AdmissionPolicy = {
  keyRing,
  models: ["embedder", "chatty"],
  embeddingModels: ["embedder"],
  limits: { maxTokensLimit: 512 },
  defaultMaxTokens: 64,
  maxRequestBytes: 256 * 1024,
  ttlSeconds: 3600,
  encryptOutput: "request",
  allowPlaintextOpenai: true,
};
const sealed = (request: unknown) => ({
  encrypted_input: keyRing.encrypt(JSON.stringify(request)),
});
const schema = generationRequestSchema({ maxTokensLimit: 512 });

function refusal(run: () => unknown): PoolError {
  try {
    run();
  } catch (error) {
    assert.ok(error instanceof PoolError, String(error));
    assert.ok(!error.message.includes(marker), "request text leaked into the message");
    return error;
  }
  assert.fail("expected a refusal");
}

function nativeIssues(request: unknown): string {
  const parsed = schema.safeParse(request);
  assert.equal(parsed.success, false, "expected the request to be refused");
  return (
    parsed.error?.issues.map((issue) => `${issue.path.join(".")}: ${issue.message}`).join("; ") ??
    ""
  );
}

describe("OpenAI /v1/embeddings bodies", () => {
  it("map a string input, with float vectors by default and user accepted", () => {
    const { request, shape } = readOpenAiBody("embeddings", {
      model: "embedder",
      input: `hello ${marker}`,
      user: "someone",
    });
    assert.deepEqual(request, { model: "embedder", input: `hello ${marker}` });
    assert.deepEqual(shape, {
      route: "embeddings",
      stream: false,
      includeUsage: false,
      encodingFormat: "float",
    });
  });

  it("map an array input in order, base64 and dimensions", () => {
    const { request, shape } = readOpenAiBody("embeddings", {
      input: ["first", "second", "third"],
      encoding_format: "base64",
      dimensions: 256,
    });
    assert.deepEqual(request, { input: ["first", "second", "third"], dimensions: 256 });
    assert.equal(shape.encodingFormat, "base64");
  });

  it("refuse token arrays, other encodings and unknown fields by name", () => {
    const message = (body: unknown) => refusal(() => readOpenAiBody("embeddings", body)).message;
    assert.match(message({ input: [1, 2, 3] }), /request\.input: .*token arrays are not supported/);
    assert.match(
      message({ input: "x", encoding_format: "int8" }),
      /request\.encoding_format: must be "float" or "base64"/,
    );
    assert.match(message({ input: "x", stream: true }), /unknown field "stream"/);
    assert.match(
      message({ input: "x", dimensions: "many" }),
      /request\.dimensions: must be a number/,
    );
  });

  it("is an openai_route of RunPod's hosted path", () => {
    const job = openAiJobSchema.parse({
      openai_route: "/v1/embeddings",
      openai_input: { input: "x" },
    });
    assert.equal(job.route, "embeddings");
  });
});

describe("the native request's input", () => {
  it("becomes an embed task with its texts in order", () => {
    const request = schema.parse({ model: "embedder", input: ["a", "b"], dimensions: 8 });
    const task = toGenerationTask(request, "embedder", { maxTokens: 16, seed: () => 1 });
    assert.deepEqual(task.input, { kind: "embed", texts: ["a", "b"], dimensions: 8 });
    const one = toGenerationTask(schema.parse({ input: "solo" }), "embedder", {
      maxTokens: 16,
      seed: () => 1,
    });
    assert.deepEqual(one.input, { kind: "embed", texts: ["solo"] });
    assert.equal(promptBytes({ kind: "embed", texts: ["ab", "abcd", "a"] }), 4, "the longest");
  });

  it("is refused with prompt or messages, sampling_params, empty texts or too many", () => {
    assert.match(
      nativeIssues({ input: "x", prompt: "y" }),
      /one of "prompt", "messages" or "input"/,
    );
    assert.match(
      nativeIssues({ input: "x", sampling_params: { temperature: 0 } }),
      /sampling_params: is not taken with "input"/,
    );
    assert.match(nativeIssues({ input: "" }), /input: must not be empty/);
    assert.match(nativeIssues({ input: ["ok", ""] }), /input\.1: must not be empty/);
    assert.match(nativeIssues({ input: [] }), /input: must hold at least one string/);
    assert.match(
      nativeIssues({ input: Array.from({ length: maxEmbeddingInputs + 1 }, () => "x") }),
      /input: must hold at most 2048 strings/,
    );
    assert.match(
      nativeIssues({ prompt: "x", dimensions: 4 }),
      /dimensions: is only for embeddings/,
    );
    assert.match(
      nativeIssues({ input: "x", dimensions: 2.5 }),
      /dimensions: must be a whole number/,
    );
  });
});

describe("admission of embeddings", () => {
  it("admits a model with the embeddings setting, encrypted, native or OpenAI-shaped", () => {
    const native = admitRequest(sealed({ model: "embedder", input: [marker, "b"] }), policy);
    assert.deepEqual(native.task.input, { kind: "embed", texts: [marker, "b"] });
    // An OpenAI embeddings body as the encrypted request reads as the same request.
    const openai = admitRequest(
      sealed({ model: "embedder", input: marker, encoding_format: "float" }),
      policy,
    );
    assert.deepEqual(openai.task.input, { kind: "embed", texts: [marker] });
    const plain = admitRequest(
      { openai_route: "/v1/embeddings", openai_input: { model: "embedder", input: marker } },
      policy,
    );
    assert.equal(plain.openai?.route, "embeddings");
    assert.deepEqual(plain.task.input, { kind: "embed", texts: [marker] });
  });

  it("refuses a model without it, naming the model and the setting", () => {
    const error = refusal(() => admitRequest(sealed({ model: "chatty", input: marker }), policy));
    assert.equal(error.code, "INVALID_REQUEST");
    assert.match(error.message, /model "chatty" does not serve embeddings/);
    assert.match(error.message, /\?embeddings=true/);
    const plain = refusal(() =>
      admitRequest(
        { openai_route: "/v1/embeddings", openai_input: { model: "chatty", input: marker } },
        policy,
      ),
    );
    assert.equal(plain.code, "INVALID_REQUEST");
    // Text requests to the embeddings model still work: it may serve text too.
    assert.equal(
      admitRequest(sealed({ model: "embedder", prompt: marker }), policy).task.input.kind,
      "prompt",
    );
  });
});

describe("OpenAI's embeddings answer", () => {
  const vectors = [
    [0.5, -1.25, 3.0000001192092896],
    [1e-8, 0, -0],
  ];
  const final: FinalChunk = {
    seq: 0,
    done: true,
    finish_reason: "stop",
    usage: { prompt_tokens: 7, completion_tokens: 0 },
    timings: { queue_ms: 0, load_ms: 0, ttft_ms: 1, total_ms: 1 },
    embeddings: vectors,
  };

  it("lists one embedding per input, in order, with the usage", () => {
    const answer = new OpenAiAnswer(
      { route: "embeddings", stream: false, includeUsage: false, encodingFormat: "float" },
      "job-1",
      "embedder",
    );
    assert.deepEqual(answer.complete([final]), {
      object: "list",
      data: [
        { object: "embedding", index: 0, embedding: vectors[0] },
        { object: "embedding", index: 1, embedding: vectors[1] },
      ],
      model: "embedder",
      usage: { prompt_tokens: 7, total_tokens: 7 },
    });
  });

  it("encodes base64 as little-endian float32, as OpenAI does", () => {
    const answer = new OpenAiAnswer(
      { route: "embeddings", stream: false, includeUsage: false, encodingFormat: "base64" },
      "job-1",
      "embedder",
    ).complete([final]) as { data: { embedding: string }[] };
    const decoded = answer.data.map((item) => {
      const bytes = Buffer.from(item.embedding, "base64");
      return Array.from({ length: bytes.length / 4 }, (_, index) => bytes.readFloatLE(index * 4));
    });
    assert.deepEqual(
      decoded,
      vectors.map((vector) => vector.map((value) => Math.fround(value))),
    );
    // 1.0 as float32 little-endian is 00 00 80 3f.
    assert.equal(base64OfVector([1]), Buffer.from([0, 0, 0x80, 0x3f]).toString("base64"));
  });
});
