/**
 * The official `openai` client, unchanged, through the encrypting proxy, against the real local
 * stack: a recording relay between the proxy and the pool shows that only ciphertext crosses.
 * Also: an OpenAI body as the encrypted request of `/run`, and the plaintext `/openai/v1` routes
 * (this stack opts in with `ALLOW_PLAINTEXT_OPENAI=true`; `tests/http/local-api-contract.test.ts`
 * shows them refused by default).
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import OpenAI from "openai";
import { tinyModelPath } from "../support/models.js";
import { abortAtFirstText, readChatStream } from "../support/openai-stream.js";
import { assertPerson, personSchema } from "../support/person-schema.js";
import { ProxiedStack } from "../support/proxied-stack.js";
import type { RecordingRelay } from "../support/recording-relay.js";
import { referenceTexts } from "../support/reference.js";
import { type TestStack, textOf } from "../support/stack.js";
import { waitFor } from "../support/wait-for.js";

const marker = "quokkamarker";
const prompt = `Once upon a time ${marker}`;
const messages = [
  { role: "system" as const, content: `You are a storyteller ${marker}.` },
  { role: "user" as const, content: "Tell me about the sun." },
];

describe("openai client through the encrypting proxy (local stack)", () => {
  let proxied: ProxiedStack | undefined;
  let stack: TestStack;
  let relay: RecordingRelay;
  let openai: OpenAI;
  let reference: string[];
  const generated: string[] = [];

  before(async () => {
    const modelPath = await tinyModelPath({ chatTemplate: "chatml" });
    reference = await referenceTexts(modelPath, [
      { prompt, maxTokens: 32 },
      { messages, maxTokens: 24 },
    ]);
    proxied = await ProxiedStack.start({
      models: `tiny=${modelPath}`,
      env: {
        MODEL_SEQUENCES: "2",
        CONTEXT_SIZE: "1024",
        DELTA_WINDOW_MS: "0",
        // Only for the plaintext route test: the proxy's traffic stays encrypted regardless.
        ALLOW_PLAINTEXT_OPENAI: "true",
      },
      label: "openai",
    });
    ({ stack, relay, openai } = proxied);
  });

  after(async () => {
    await proxied?.close();
  });

  it("lists the endpoint's models", async () => {
    const models = await openai.models.list();
    assert.deepEqual(
      models.data.map((model) => model.id),
      ["tiny"],
    );
  });

  it("completes a prompt with node-llama-cpp's greedy text", async () => {
    const completion = await stack.explain(
      openai.completions.create({ model: "tiny", prompt, max_tokens: 32, temperature: 0 }),
    );
    assert.equal(completion.object, "text_completion");
    assert.equal(completion.choices[0]?.text, reference[0]);
    assert.equal(completion.choices[0]?.finish_reason, "length");
    assert.ok((completion.usage?.prompt_tokens ?? 0) > 0);
    generated.push(completion.choices[0]?.text ?? "");
  });

  it("streams a chat reply, then the usage", async () => {
    const stream = await openai.chat.completions.create({
      model: "tiny",
      messages,
      max_tokens: 24,
      temperature: 0,
      stream: true,
      stream_options: { include_usage: true },
    });
    let text = "";
    let contentChunks = 0;
    let usage: OpenAI.CompletionUsage | undefined | null;
    let finish: string | null | undefined;
    for await (const chunk of stream) {
      assert.equal(chunk.object, "chat.completion.chunk");
      const choice = chunk.choices[0];
      if (choice?.delta.content) {
        text += choice.delta.content;
        contentChunks += 1;
      }
      if (choice?.finish_reason) finish = choice.finish_reason;
      if (chunk.usage) {
        assert.equal(chunk.choices.length, 0, "the usage chunk has no choices");
        usage = chunk.usage;
      }
    }
    assert.equal(text, reference[1]);
    assert.ok(contentChunks > 1, "the text arrived in several chunks");
    assert.ok(finish === "length" || finish === "stop");
    assert.ok(usage && usage.prompt_tokens > 0 && usage.completion_tokens > 0);
    assert.equal(usage.total_tokens, usage.prompt_tokens + usage.completion_tokens);
    // The prompt cache's count, in OpenAI's place for it.
    assert.equal(typeof usage.prompt_tokens_details?.cached_tokens, "number");
    generated.push(text);
  });

  it("holds a chat reply to a JSON Schema (response_format json_schema)", async () => {
    const completion = await openai.chat.completions.create({
      model: "tiny",
      messages: [{ role: "user", content: `A person please ${marker}` }],
      max_tokens: 200,
      temperature: 0,
      response_format: {
        type: "json_schema",
        json_schema: { name: "person", schema: personSchema },
      },
    });
    const content = completion.choices[0]?.message.content ?? "";
    assertPerson(JSON.parse(content));
    generated.push(content);
  });

  it("answers OpenAI errors with their HTTP status", async () => {
    await assert.rejects(
      openai.chat.completions.create({ model: "no-such-model", messages }),
      (error: unknown) => {
        assert.ok(error instanceof OpenAI.NotFoundError);
        assert.equal((error as { code?: string }).code, "model_not_found");
        return true;
      },
    );
    await assert.rejects(
      openai.chat.completions.create({ model: "tiny", messages, n: 3 }),
      (error: unknown) =>
        error instanceof OpenAI.BadRequestError && /\bn: must be at most 2\b/.test(error.message),
    );
    await assert.rejects(
      openai.chat.completions.create({
        model: "tiny",
        messages,
        response_format: {
          type: "json_schema",
          json_schema: {
            name: "bad",
            schema: { type: "object", properties: { a: { type: "nope" } } },
          },
        },
      }),
      (error: unknown) =>
        error instanceof OpenAI.BadRequestError &&
        /json_schema\.properties\.a\.type/.test(error.message),
    );
  });

  it("answers a prompt the context cannot hold with 400 context_length_exceeded", async () => {
    await assert.rejects(
      openai.completions.create({
        model: "tiny",
        prompt: "the ".repeat(1100),
        max_tokens: 5,
        stream: true,
      }),
      (error: unknown) =>
        error instanceof OpenAI.BadRequestError && error.code === "context_length_exceeded",
    );
  });

  it("cancels the job when the caller goes away", async () => {
    const jobId = await abortAtFirstText(openai);
    let status = "";
    await waitFor(
      async () => {
        status = ((await stack.get(`/status/${jobId}`)) as { status: string }).status;
        return status !== "IN_PROGRESS" && status !== "IN_QUEUE";
      },
      15_000,
      "the job to end",
    );
    assert.equal(status, "CANCELLED");
  });

  it("lets no prompt or output text cross between the proxy and the pool", () => {
    const traffic = relay.traffic;
    assert.ok(
      relay.calls.some((call) => call.path === "/run"),
      "the proxy submitted jobs",
    );
    assert.ok(traffic.includes("encrypted_input"));
    assert.ok(!traffic.includes(marker), "no prompt text");
    assert.ok(!traffic.includes("storyteller"), "no message text");
    assert.ok(generated.length >= 3);
    for (const text of generated) {
      for (const piece of text.split(/\s+/).filter((word) => /^[A-Za-z]{6,}$/.test(word))) {
        // Single words may appear in a base64 token by chance only with negligible odds.
        assert.ok(!traffic.includes(piece), "no generated text");
      }
      assert.ok(!traffic.includes(text.slice(0, 20)), "no generated text");
    }
    for (const call of relay.calls.filter((call) => call.path.startsWith("/stream"))) {
      for (const item of (JSON.parse(call.responseBody) as { stream?: { output: object }[] })
        .stream ?? []) {
        assert.ok("encrypted" in item.output, "every streamed chunk is encrypted");
      }
    }
  });

  it("takes an OpenAI body as the encrypted request of /run", async () => {
    const view = await stack.runsync({ model: "tiny", prompt, max_tokens: 32, temperature: 0 });
    assert.equal(view.status, "COMPLETED", view.error);
    assert.equal(textOf(view.output ?? []), reference[0]);
  });

  it("serves the plaintext /openai/v1 routes when ALLOW_PLAINTEXT_OPENAI is on", async () => {
    const plain = new OpenAI({
      baseURL: `${stack.url}/v2/any-id/openai/v1`,
      apiKey: "x",
      maxRetries: 0,
    });
    assert.deepEqual(
      (await plain.models.list()).data.map((model) => model.id),
      ["tiny"],
    );
    const completion = await plain.completions.create({
      model: "tiny",
      prompt,
      max_tokens: 32,
      temperature: 0,
    });
    assert.equal(completion.choices[0]?.text, reference[0]);
    const stream = await plain.chat.completions.create({
      model: "tiny",
      messages,
      max_tokens: 24,
      temperature: 0,
      stream: true,
      stream_options: { include_usage: true },
    });
    const { text, usage } = await readChatStream(stream);
    assert.equal(text, reference[1]);
    assert.ok(usage && usage.prompt_tokens > 0);
    await assert.rejects(
      plain.chat.completions.create({ model: "tiny", messages, temperature: 7 }),
      (error: unknown) =>
        error instanceof OpenAI.BadRequestError && /temperature/.test(error.message),
    );
    assert.ok(!stack.logs.join("\n").includes(marker), "no prompt text in the logs");
  });
});
