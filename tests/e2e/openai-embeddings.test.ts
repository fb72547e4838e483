/**
 * Embeddings end to end: the official `openai` client through the encrypting proxy against the
 * real local stack, whose model `emb` has `?embeddings=true` and `plain` has not. The vectors are
 * node-llama-cpp's own for the same text on the same GGUF; a recording relay between the proxy and
 * the pool shows that no input text crosses. Also the native request shape (`input`), and the
 * plaintext `/openai/v1/embeddings` route (opted in here with `ALLOW_PLAINTEXT_OPENAI=true`); and
 * on a RunPod endpoint (the fake platform): the proxy against the hosted API, and `openai_route`.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import OpenAI from "openai";
import { OpenAiProxy, PoolClient } from "../../client/index.js";
import { isFinalChunk } from "../../shared/protocol/index.js";
import { FakeRunpodPlatform } from "../fakes/runpod-platform.js";
import { tinyModelPath } from "../support/models.js";
import { ProxiedStack } from "../support/proxied-stack.js";
import type { RecordingRelay } from "../support/recording-relay.js";
import {
  cosine,
  type ReferenceEmbeddings,
  referenceEmbeddings,
} from "../support/reference-embeddings.js";
import { TestStack } from "../support/stack.js";

const marker = "wombatmarker";
const texts = [
  `The ${marker} sat by the river.`,
  "A fox jumped over the lazy dog.",
  "Stars burn hydrogen into helium.",
];
const contextSize = 1024;

function assertNear(actual: readonly number[], expected: readonly number[], what: string): void {
  assert.equal(actual.length, expected.length, `${what}: vector size`);
  const similarity = cosine(actual, expected);
  assert.ok(similarity >= 0.9999, `${what}: cosine ${similarity} < 0.9999`);
}

function decodeBase64(text: string): number[] {
  const bytes = Buffer.from(text, "base64");
  return Array.from({ length: bytes.length / 4 }, (_, index) => bytes.readFloatLE(index * 4));
}

describe("embeddings through the encrypting proxy (local stack)", () => {
  let proxied: ProxiedStack | undefined;
  let stack: TestStack;
  let relay: RecordingRelay;
  let openai: OpenAI;
  let reference: ReferenceEmbeddings;

  before(async () => {
    const modelPath = await tinyModelPath({ chatTemplate: "chatml" });
    reference = await referenceEmbeddings(modelPath, texts, contextSize);
    proxied = await ProxiedStack.start({
      models: `emb=${modelPath}?embeddings=true,plain=${modelPath}`,
      env: {
        MODEL_SEQUENCES: "2",
        CONTEXT_SIZE: String(contextSize),
        DELTA_WINDOW_MS: "0",
        ALLOW_PLAINTEXT_OPENAI: "true",
      },
      label: "embeddings",
    });
    ({ stack, relay, openai } = proxied);
  });

  after(async () => {
    await proxied?.close();
  });

  it("embeds a text as node-llama-cpp does, with its token count", async () => {
    const answer = await stack.explain(
      openai.embeddings.create({ model: "emb", input: texts[0] ?? "", encoding_format: "float" }),
    );
    assert.equal(answer.object, "list");
    assert.equal(answer.model, "emb");
    assert.equal(answer.data.length, 1);
    assert.equal(answer.data[0]?.object, "embedding");
    assertNear(answer.data[0]?.embedding ?? [], reference.vectors[0] ?? [], "text 0");
    assert.equal(answer.usage.prompt_tokens, reference.tokens[0]);
    assert.equal(answer.usage.total_tokens, reference.tokens[0]);
  });

  it("answers an array input in order, as one job", async () => {
    const runsBefore = relay.calls.filter((call) => call.path === "/run").length;
    const answer = await openai.embeddings.create({
      model: "emb",
      input: texts,
      encoding_format: "float",
    });
    assert.equal(relay.calls.filter((call) => call.path === "/run").length, runsBefore + 1);
    assert.deepEqual(
      answer.data.map((item) => item.index),
      [0, 1, 2],
    );
    answer.data.forEach((item, index) => {
      assertNear(item.embedding, reference.vectors[index] ?? [], `text ${index}`);
    });
    assert.equal(
      answer.usage.prompt_tokens,
      reference.tokens.reduce((sum, count) => sum + count, 0),
    );
  });

  it("gives base64 that decodes to the float answer exactly (and the client's default)", async () => {
    const float = await openai.embeddings.create({
      model: "emb",
      input: texts,
      encoding_format: "float",
    });
    const base64 = await openai.embeddings.create({
      model: "emb",
      input: texts,
      encoding_format: "base64",
    });
    base64.data.forEach((item, index) => {
      assert.equal(typeof item.embedding, "string", "asked for base64: the client leaves it");
      const decoded = decodeBase64(item.embedding as unknown as string);
      assert.deepEqual(decoded, float.data[index]?.embedding);
    });
    // Without encoding_format the client asks for base64 and decodes it itself.
    const byDefault = await openai.embeddings.create({ model: "emb", input: texts[1] ?? "" });
    assert.deepEqual(byDefault.data[0]?.embedding, float.data[1]?.embedding);
  });

  it("takes dimensions equal to the model's size and refuses another by name", async () => {
    const size = reference.vectors[0]?.length ?? 0;
    const same = await openai.embeddings.create({
      model: "emb",
      input: "x",
      dimensions: size,
      encoding_format: "float",
    });
    assert.equal(same.data[0]?.embedding.length, size);
    await assert.rejects(
      openai.embeddings.create({ model: "emb", input: "x", dimensions: 8 }),
      (error: unknown) =>
        error instanceof OpenAI.BadRequestError &&
        error.message.includes("dimensions") &&
        error.message.includes(String(size)),
    );
  });

  it("refuses a model without the embeddings setting, naming it and the setting", async () => {
    await assert.rejects(
      openai.embeddings.create({ model: "plain", input: texts[0] ?? "" }),
      (error: unknown) =>
        error instanceof OpenAI.BadRequestError &&
        error.message.includes('model "plain" does not serve embeddings') &&
        error.message.includes("?embeddings=true"),
    );
  });

  it("still serves text on the embeddings model", async () => {
    const completion = await openai.completions.create({
      model: "emb",
      prompt: "Once upon a time",
      max_tokens: 8,
      temperature: 0,
    });
    assert.equal(completion.usage?.completion_tokens, 8);
  });

  it("lets no input text cross between the proxy and the pool", () => {
    const traffic = relay.calls.map((call) => call.requestBody + call.responseBody).join("\n");
    assert.ok(relay.calls.some((call) => call.path === "/run"));
    assert.ok(traffic.includes("encrypted_input"));
    assert.ok(!traffic.includes(marker), "no input text");
    for (const text of texts) {
      for (const word of text.split(/\W+/).filter((piece) => piece.length >= 6)) {
        assert.ok(!traffic.includes(word), "no input text");
      }
    }
    for (const call of relay.calls.filter((call) => call.path.startsWith("/stream"))) {
      for (const item of (JSON.parse(call.responseBody) as { stream?: { output: object }[] })
        .stream ?? []) {
        assert.ok("encrypted" in item.output, "every chunk, the vectors' too, is encrypted");
      }
    }
  });

  it("answers the native request shape: input in, embeddings in the final chunk", async () => {
    const view = await stack.runsync({ model: "emb", input: texts });
    assert.equal(view.status, "COMPLETED", view.error);
    const chunks = view.output ?? [];
    assert.equal(chunks.length, 1, "no deltas: one final chunk");
    const final = chunks[0];
    assert.ok(final !== undefined && isFinalChunk(final));
    assert.equal(final.finish_reason, "stop");
    assert.equal(
      final.usage.prompt_tokens,
      reference.tokens.reduce((sum, count) => sum + count, 0),
    );
    assert.equal(final.usage.completion_tokens, 0);
    assert.equal(final.embeddings?.length, texts.length);
    final.embeddings?.forEach((vector, index) => {
      assertNear(vector, reference.vectors[index] ?? [], `native text ${index}`);
    });
    const refused = await stack.runsync({ model: "plain", input: "x" });
    assert.equal(refused.status, "FAILED");
    assert.match(refused.error ?? "", /INVALID_REQUEST/);
  });

  it("serves the plaintext /openai/v1/embeddings route when ALLOW_PLAINTEXT_OPENAI is on", async () => {
    const plain = new OpenAI({
      baseURL: `${stack.url}/v2/any-id/openai/v1`,
      apiKey: "x",
      maxRetries: 0,
    });
    const answer = await plain.embeddings.create({
      model: "emb",
      input: texts,
      encoding_format: "float",
    });
    answer.data.forEach((item, index) => {
      assertNear(item.embedding, reference.vectors[index] ?? [], `plaintext text ${index}`);
    });
  });
});

describe("embeddings on a RunPod endpoint (fake platform)", () => {
  const userApiKey = "user-key-for-hosted-api";
  let platform: FakeRunpodPlatform;
  let stack: TestStack;
  let proxy: OpenAiProxy;
  let reference: ReferenceEmbeddings;

  before(async () => {
    const modelPath = await tinyModelPath({ chatTemplate: "chatml" });
    reference = await referenceEmbeddings(modelPath, texts, contextSize);
    platform = await FakeRunpodPlatform.start({ apiKey: "worker-key", holdMs: 300, userApiKey });
    stack = await TestStack.start({
      models: `tiny=${modelPath}?embeddings=true`,
      runpod: platform.env(),
      env: {
        CONTEXT_SIZE: String(contextSize),
        STREAM_POST_WINDOW_MS: "5",
        ALLOW_PLAINTEXT_OPENAI: "true",
      },
      label: "rp-embeddings",
    });
    const client = new PoolClient({
      baseUrl: platform.hostedUrl,
      apiKey: userApiKey,
      keyRing: stack.keyRing,
      idlePollMs: 50,
    });
    proxy = await OpenAiProxy.start({ client, keyRing: stack.keyRing }, "127.0.0.1", 0);
  });

  after(async () => {
    await proxy?.close();
    await stack?.stop();
    await platform?.close();
  });

  it("serves the openai client through the proxy against the hosted API", async () => {
    const openai = new OpenAI({ baseURL: `${proxy.url}/v1`, apiKey: "unused", maxRetries: 0 });
    const answer = await stack.explain(
      openai.embeddings.create({ model: "default", input: texts, encoding_format: "float" }),
    );
    answer.data.forEach((item, index) => {
      assertNear(item.embedding, reference.vectors[index] ?? [], `runpod text ${index}`);
    });
  });

  it("answers an openai_route /v1/embeddings job with OpenAI's object (base64)", async () => {
    platform.enqueue({
      id: "oa-embed",
      input: {
        openai_route: "/v1/embeddings",
        openai_input: { model: "tiny", input: texts, encoding_format: "base64" },
      },
    });
    const [answer] = (await platform.waitForOutput("oa-embed")).body.output as {
      object: string;
      data: { index: number; embedding: string }[];
      usage: { prompt_tokens: number };
    }[];
    assert.equal(answer?.object, "list");
    assert.deepEqual(
      answer?.data.map((item) => item.index),
      [0, 1, 2],
    );
    answer?.data.forEach((item, index) => {
      assertNear(decodeBase64(item.embedding), reference.vectors[index] ?? [], `route ${index}`);
    });
    assert.equal(
      answer?.usage.prompt_tokens,
      reference.tokens.reduce((sum, count) => sum + count, 0),
    );
  });
});
