/**
 * Mixed load on one model through the whole stack: a short job next to two long ones ends as soon
 * as its text is done and its sequence serves the next short job while the long ones still run (no
 * head-of-line blocking); a follow-up that shares a prefix reports it as cached tokens and streams
 * the text a cold run gives; with `PROMPT_CACHE=off` nothing is cached.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { type FinalChunk, isFinalChunk, type StreamChunk } from "../../shared/protocol/index.js";
import { tinyModelPath } from "../support/models.js";
import { referenceTexts } from "../support/reference.js";
import { TestStack, textOf } from "../support/stack.js";

const story = Array.from({ length: 60 }, (_, index) => `the dog ran to the sun ${index}`).join(" ");

function finalOf(chunks: readonly StreamChunk[]): FinalChunk {
  const last = chunks.at(-1);
  assert.ok(last !== undefined && isFinalChunk(last), "the stream ends with the final chunk");
  return last;
}

async function complete(stack: TestStack, prompt: string, maxTokens: number) {
  const job = await stack.run({
    prompt,
    sampling_params: { max_tokens: maxTokens, temperature: 0 },
  });
  const { status, chunks } = await stack.streamAll(job.id);
  assert.equal(status, "COMPLETED");
  return { text: textOf(chunks), final: finalOf(chunks) };
}

describe("serving core through the stack", () => {
  let stack: TestStack;
  let modelPath: string;

  before(async () => {
    modelPath = await tinyModelPath();
    stack = await TestStack.start({
      models: `tiny=${modelPath}`,
      env: { MODEL_SEQUENCES: "3", CONTEXT_SIZE: "2048", DELTA_WINDOW_MS: "5" },
      label: "serving",
    });
  });

  after(async () => {
    await stack?.stop();
  });

  it("a short job next to two long ones ends while they run, and its sequence serves the next", async () => {
    const long = await Promise.all(
      [1, 2].map((index) =>
        stack.run({
          prompt: `a long story ${index}`,
          sampling_params: { max_tokens: 1900, temperature: 0 },
        }),
      ),
    );
    // Both long jobs generate before the short ones are sent.
    for (const job of long) {
      for (;;) {
        const page = (await stack.get(`/stream/${job.id}?wait=5000`)) as { stream: unknown[] };
        if (page.stream.length > 0) break;
      }
    }
    const longStatuses: string[][] = [];
    for (const prompt of ["once upon", "the cat"]) {
      const { final } = await complete(stack, prompt, 8);
      assert.equal(final.usage.completion_tokens, 8);
      const statuses = await Promise.all(
        long.map(
          async (job) => ((await stack.get(`/status/${job.id}`)) as { status: string }).status,
        ),
      );
      longStatuses.push(statuses);
    }
    assert.deepEqual(longStatuses, [
      ["IN_PROGRESS", "IN_PROGRESS"],
      ["IN_PROGRESS", "IN_PROGRESS"],
    ]);
    for (const job of long) {
      const { status, chunks } = await stack.streamAll(job.id);
      assert.equal(status, "COMPLETED");
      assert.equal(finalOf(chunks).usage.completion_tokens, 1900);
    }
  });

  it("a follow-up sharing a prefix reports cached tokens and streams node-llama-cpp's text", async () => {
    const first = await complete(stack, story, 12);
    const followUp = `${story}${first.text} and the bird`;
    // node-llama-cpp's own reuse of a sequence: the prompt and the first reply's tokens stay, the
    // rest is evaluated. (A cold run may differ: the first reply's tokens were evaluated one decode
    // step each, and llama.cpp's results depend on the batch's shape.)
    const [firstReference, expected] = await referenceTexts(modelPath, [
      { prompt: story, maxTokens: 12, keepSequence: true },
      { prompt: followUp, maxTokens: 20 },
    ]);
    assert.equal(first.text, firstReference);
    const second = await complete(stack, followUp, 20);
    assert.equal(second.text, expected);
    const cached = second.final.usage.prompt_tokens_details?.cached_tokens ?? 0;
    assert.ok(
      cached >= first.final.usage.prompt_tokens - 2 && cached < second.final.usage.prompt_tokens,
      `cached ${cached} of ${second.final.usage.prompt_tokens}; the first had ${first.final.usage.prompt_tokens}`,
    );
  });
});

describe("PROMPT_CACHE=off through the stack", () => {
  let stack: TestStack;

  before(async () => {
    stack = await TestStack.start({
      models: `tiny=${await tinyModelPath()}`,
      env: { MODEL_SEQUENCES: "1", CONTEXT_SIZE: "1024", PROMPT_CACHE: "off" },
      label: "serving-off",
    });
  });

  after(async () => {
    await stack?.stop();
  });

  it("reports no cached tokens for a repeated prompt, and the same text", async () => {
    const first = await complete(stack, story, 10);
    const second = await complete(stack, story, 10);
    assert.equal(second.text, first.text);
    assert.equal(first.final.usage.prompt_tokens_details?.cached_tokens, 0);
    assert.equal(second.final.usage.prompt_tokens_details?.cached_tokens, 0);
  });
});
