/**
 * logprobs and `n` > 1 with the official `openai` client through the encrypting proxy, against
 * the real stack on the generated tiny model: under greedy sampling each token's top entry is the
 * chosen token, the top probabilities sum to at most 1 and the text is the one without logprobs
 * (node-llama-cpp's own); streamed logprobs assemble to the non-streamed ones; `n=3` gives three
 * choices, each index present, different when sampled, the same again with the seed; the
 * completions API's logprobs; the native request's `sampling_params.n` / `logprobs`; refusals
 * named; and no prompt or output text between the proxy and the pool.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import OpenAI from "openai";
import { type DeltaChunk, isFinalChunk } from "../../shared/protocol/index.js";
import { tinyModelPath } from "../support/models.js";
import { ProxiedStack } from "../support/proxied-stack.js";
import type { RecordingRelay } from "../support/recording-relay.js";
import { referenceTexts } from "../support/reference.js";
import type { TestStack } from "../support/stack.js";

type ChatLogprob = OpenAI.Chat.Completions.ChatCompletionTokenLogprob;

const marker = "wombatmarker";
const prompt = `Once upon a time ${marker}`;
const messages = [
  { role: "system" as const, content: `You are a storyteller ${marker}.` },
  { role: "user" as const, content: "Tell me about the moon." },
];

function assertGreedyEntries(entries: readonly ChatLogprob[], text: string, top: number): void {
  assert.ok(entries.length > 0, "one entry per token");
  assert.equal(entries.map((entry) => entry.token).join(""), text, "the tokens spell the text");
  for (const entry of entries) {
    assert.ok(entry.logprob <= 0);
    assert.equal(entry.top_logprobs.length, top);
    assert.equal(entry.top_logprobs[0]?.token, entry.token, "greedy: the top entry is chosen");
    const sum = entry.top_logprobs.reduce((total, alt) => total + Math.exp(alt.logprob), 0);
    assert.ok(sum <= 1 + 1e-6, `the top probabilities sum to ${sum}`);
  }
}

describe("logprobs and n > 1 through the encrypting proxy (local stack)", () => {
  let proxied: ProxiedStack | undefined;
  let stack: TestStack;
  let relay: RecordingRelay;
  let openai: OpenAI;
  let reference: string[];
  const generated: string[] = [];

  before(async () => {
    const modelPath = await tinyModelPath({ chatTemplate: "chatml" });
    reference = await referenceTexts(modelPath, [
      { prompt, maxTokens: 24 },
      { messages, maxTokens: 24 },
    ]);
    proxied = await ProxiedStack.start({
      models: `tiny=${modelPath}`,
      env: {
        MODEL_SEQUENCES: "3",
        CONTEXT_SIZE: "1024",
        DELTA_WINDOW_MS: "0",
        // Only for the plaintext route test: the proxy's traffic stays encrypted regardless.
        ALLOW_PLAINTEXT_OPENAI: "true",
      },
      label: "logprobs",
    });
    ({ stack, relay, openai } = proxied);
  });

  after(async () => {
    await proxied?.close();
  });

  const greedyChat = { model: "tiny", messages, max_tokens: 24, temperature: 0 } as const;

  it("gives chat logprobs whose top entry is the chosen token, with the same text", async () => {
    const plain = await stack.explain(openai.chat.completions.create(greedyChat));
    const completion = await openai.chat.completions.create({
      ...greedyChat,
      logprobs: true,
      top_logprobs: 5,
    });
    const choice = completion.choices[0];
    const text = choice?.message.content ?? "";
    assert.equal(plain.choices[0]?.message.content, reference[1]);
    assert.equal(text, reference[1], "the text is the one without logprobs");
    assert.equal(plain.choices[0]?.logprobs, null, "no logprobs unless asked");
    assertGreedyEntries(choice?.logprobs?.content ?? [], text, 5);
    generated.push(text);
  });

  it("streams logprobs that assemble to the non-streamed ones", async () => {
    const request = { ...greedyChat, logprobs: true, top_logprobs: 2 } as const;
    const whole = await openai.chat.completions.create(request);
    const stream = await openai.chat.completions.create({ ...request, stream: true });
    let text = "";
    const entries: ChatLogprob[] = [];
    let chunks = 0;
    for await (const chunk of stream) {
      const choice = chunk.choices[0];
      if (choice === undefined) continue;
      assert.equal(choice.index, 0);
      text += choice.delta.content ?? "";
      const content = choice.logprobs?.content ?? [];
      // Each chunk carries the entries of the tokens whose text it holds.
      assert.equal(content.map((entry) => entry.token).join(""), choice.delta.content ?? "");
      entries.push(...content);
      if (content.length > 0) chunks += 1;
    }
    assert.ok(chunks > 1, "logprobs came in several chunks");
    assert.equal(text, whole.choices[0]?.message.content);
    assert.deepEqual(entries, whole.choices[0]?.logprobs?.content);
  });

  it("gives the completions API's logprobs, streamed and not", async () => {
    const request = { model: "tiny", prompt, max_tokens: 24, temperature: 0, logprobs: 3 };
    const completion = await openai.completions.create(request);
    const choice = completion.choices[0];
    assert.equal(choice?.text, reference[0]);
    const logprobs = choice?.logprobs;
    assert.ok(logprobs?.tokens && logprobs.token_logprobs && logprobs.top_logprobs);
    assert.equal(logprobs.tokens.join(""), choice?.text);
    assert.equal(logprobs.token_logprobs.length, logprobs.tokens.length);
    logprobs.tokens.forEach((token, i) => {
      const top = logprobs.top_logprobs?.[i] ?? {};
      assert.ok(Object.keys(top).length <= 3);
      const best = Object.entries(top).sort(([, a], [, b]) => b - a)[0];
      assert.equal(best?.[0], token, "greedy: the top entry is chosen");
    });
    let at = 0;
    logprobs.tokens.forEach((token, i) => {
      assert.equal(logprobs.text_offset?.[i], at);
      at += token.length;
    });
    const stream = await openai.completions.create({ ...request, stream: true });
    const tokens: string[] = [];
    const offsets: number[] = [];
    for await (const chunk of stream) {
      tokens.push(...(chunk.choices[0]?.logprobs?.tokens ?? []));
      offsets.push(...(chunk.choices[0]?.logprobs?.text_offset ?? []));
    }
    assert.deepEqual(tokens, logprobs.tokens);
    assert.deepEqual(offsets, logprobs.text_offset);
    generated.push(choice?.text ?? "");
  });

  it("gives n=3 choices, each its own, the same again with the seed", async () => {
    const request = { model: "tiny", messages, max_tokens: 24, temperature: 1, n: 3, seed: 7 };
    const first = await openai.chat.completions.create(request);
    assert.deepEqual(
      first.choices.map((choice) => choice.index),
      [0, 1, 2],
    );
    const texts = first.choices.map((choice) => choice.message.content ?? "");
    assert.equal(new Set(texts).size, 3, "sampled choices differ");
    for (const choice of first.choices)
      assert.ok(["stop", "length"].includes(choice.finish_reason));
    assert.ok((first.usage?.completion_tokens ?? 0) >= 3, "usage counts every choice");
    const again = await openai.chat.completions.create(request);
    assert.deepEqual(
      again.choices.map((choice) => choice.message.content),
      texts,
      "the same seed, the same choices",
    );
    generated.push(...texts);

    const stream = await openai.chat.completions.create({
      ...request,
      stream: true,
      stream_options: { include_usage: true },
    });
    const streamed = ["", "", ""];
    const roles = new Set<number>();
    const finished = new Map<number, string>();
    let usage: OpenAI.CompletionUsage | null | undefined;
    for await (const chunk of stream) {
      usage ??= chunk.usage;
      for (const choice of chunk.choices) {
        if (choice.delta.role === "assistant") roles.add(choice.index);
        streamed[choice.index] += choice.delta.content ?? "";
        if (choice.finish_reason) finished.set(choice.index, choice.finish_reason);
      }
    }
    assert.deepEqual([...roles].sort(), [0, 1, 2], "each choice's first chunk names its role");
    assert.deepEqual([...finished.keys()].sort(), [0, 1, 2], "each choice ends");
    assert.deepEqual(streamed, texts, "streamed choices are the same");
    assert.equal(usage?.completion_tokens, first.usage?.completion_tokens);
  });

  it("gives n=3 completions with logprobs, each index present", async () => {
    const completion = await openai.completions.create({
      model: "tiny",
      prompt,
      max_tokens: 6,
      temperature: 1,
      n: 3,
      logprobs: 1,
    });
    assert.deepEqual(
      completion.choices.map((choice) => choice.index),
      [0, 1, 2],
    );
    for (const choice of completion.choices) {
      assert.equal(choice.logprobs?.tokens?.join(""), choice.text);
    }
  });

  it("takes the native request's sampling_params.n and logprobs", async () => {
    const view = await stack.runsync({
      prompt,
      sampling_params: { max_tokens: 6, temperature: 0, n: 2, logprobs: 1 },
    });
    assert.equal(view.status, "COMPLETED", view.error);
    const chunks = view.output ?? [];
    const final = chunks.find(isFinalChunk);
    assert.deepEqual(
      final?.choices?.map((choice) => choice.index),
      [0, 1],
    );
    const deltas = chunks.filter((chunk): chunk is DeltaChunk => !isFinalChunk(chunk));
    const textOf = (index: number) =>
      deltas
        .filter((chunk) => (chunk.index ?? 0) === index)
        .map((chunk) => chunk.delta)
        .join("");
    assert.equal(textOf(0), reference[0]?.slice(0, textOf(0).length));
    assert.equal(textOf(1), textOf(0), "greedy choices are alike");
    assert.ok(
      deltas.every((chunk) => chunk.logprobs?.every((entry) => entry.top_logprobs.length === 1)),
    );
    assert.equal(
      final?.usage.completion_tokens,
      final?.choices?.reduce((sum, choice) => sum + (choice.completion_tokens ?? 0), 0),
    );
  });

  it("answers n and logprobs the same on the plaintext /openai/v1 routes", async () => {
    const plain = new OpenAI({
      baseURL: `${stack.url}/v2/any-id/openai/v1`,
      apiKey: "x",
      maxRetries: 0,
    });
    const request = { ...greedyChat, n: 2, logprobs: true, top_logprobs: 1 } as const;
    const completion = await plain.chat.completions.create(request);
    assert.deepEqual(
      completion.choices.map((choice) => choice.index),
      [0, 1],
    );
    for (const choice of completion.choices) {
      assertGreedyEntries(choice.logprobs?.content ?? [], choice.message.content ?? "", 1);
    }
    const stream = await plain.chat.completions.create({ ...request, stream: true });
    const texts = ["", ""];
    for await (const chunk of stream) {
      for (const choice of chunk.choices) texts[choice.index] += choice.delta.content ?? "";
    }
    assert.deepEqual(
      texts,
      completion.choices.map((choice) => choice.message.content),
    );
  });

  it("refuses n above a thread's sequences and top_logprobs above 20, by name", async () => {
    await assert.rejects(
      openai.chat.completions.create({ ...greedyChat, n: 4 }),
      (error: unknown) =>
        error instanceof OpenAI.BadRequestError && /\bn: must be at most 3\b/.test(error.message),
    );
    await assert.rejects(
      openai.chat.completions.create({ ...greedyChat, logprobs: true, top_logprobs: 21 }),
      (error: unknown) =>
        error instanceof OpenAI.BadRequestError &&
        /top_logprobs: must be at most 20/.test(error.message),
    );
    await assert.rejects(
      openai.chat.completions.create({ ...greedyChat, top_logprobs: 2 }),
      (error: unknown) =>
        error instanceof OpenAI.BadRequestError &&
        /top_logprobs: needs logprobs: true/.test(error.message),
    );
    await assert.rejects(
      openai.completions.create({ model: "tiny", prompt, logprobs: 21 }),
      (error: unknown) =>
        error instanceof OpenAI.BadRequestError &&
        /logprobs: must be at most 20/.test(error.message),
    );
  });

  it("lets no prompt or output text cross between the proxy and the pool", () => {
    const traffic = relay.traffic;
    assert.ok(traffic.includes("encrypted_input"));
    assert.ok(!traffic.includes(marker), "no prompt text");
    assert.ok(generated.length >= 5);
    for (const text of generated) {
      for (const piece of text.split(/\s+/).filter((word) => /^[A-Za-z]{6,}$/.test(word))) {
        assert.ok(!traffic.includes(piece), "no generated text");
      }
      if (text.length >= 12) assert.ok(!traffic.includes(text.slice(0, 12)), "no generated text");
    }
    assert.ok(!traffic.includes("top_logprobs"), "no logprobs in the clear");
  });
});
