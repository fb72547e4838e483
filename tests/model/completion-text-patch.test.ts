/**
 * The "completion-text-in-context" patch (patches/patches.mjs) on a SentencePiece model: a token's
 * text is read after the tokens before it, so a stop string with a space in it stops the
 * completion, and a completion's first token keeps its leading space. Both checked on
 * LlamaCompletion itself (these assertions fail on the unpatched library: the stop string ran to
 * max_tokens, and "Once upon a" was completed "time") and through a model thread, on the
 * ordinary path and the token loop (logprobs), which must give the same text.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import {
  getLlama,
  type Llama,
  LlamaCompletion,
  type LlamaContext,
  type LlamaModel,
} from "node-llama-cpp";
import { ModelPool } from "../../gpu-worker/pool/model-pool.js";
import { createLogger } from "../../shared/log.js";
import type { GenerationTask } from "../../shared/protocol/index.js";
import { sharedModelPath } from "../support/models.js";
import { greedyTask } from "../support/tasks.js";

const log = createLogger("test", { level: "error" });
const prompt = "Once upon a";
const modelPath = await sharedModelPath("stories260K.gguf");
if (modelPath === undefined) console.log("# ../shared/models has no stories260K.gguf: skipped");

describe("completion text in context (stories260K, a SentencePiece model)", {
  skip: modelPath === undefined,
}, () => {
  let llama: Llama;
  let model: LlamaModel;
  let context: LlamaContext;
  let pool: ModelPool;
  /** LlamaCompletion's greedy text for the prompt, with no stop string. */
  let uninterrupted = "";

  const complete = async (stop: string[] = []) => {
    const sequence = context.getSequence();
    try {
      const completion = new LlamaCompletion({ contextSequence: sequence });
      const chunks: string[] = [];
      const { response, metadata } = await completion.generateCompletionWithMeta(prompt, {
        maxTokens: 48,
        temperature: 0,
        ...(stop.length > 0 ? { customStopTriggers: stop } : {}),
        onTextChunk: (chunk) => chunks.push(chunk),
      });
      return { response, chunks, stopReason: metadata.stopReason };
    } finally {
      sequence.dispose();
    }
  };

  const run = async (task: GenerationTask) => {
    let text = "";
    const result = await pool.run(`job-${Math.random()}`, task, {
      signal: new AbortController().signal,
      onText: (piece: string) => {
        text += piece;
      },
    });
    return { text, finishReason: result.finishReason };
  };

  before(async () => {
    assert.ok(modelPath !== undefined);
    llama = await getLlama({ build: "never", gpu: false });
    model = await llama.loadModel({ modelPath });
    // One thread, as the pool's: more would only contend on a small machine.
    context = await model.createContext({ contextSize: 256, threads: 1 });
    uninterrupted = (await complete()).response;
    pool = await ModelPool.start({
      model: { name: "tiny", path: modelPath },
      threads: 1,
      sequences: 1,
      llamaThreads: 1,
      contextSize: 256,
      gpu: false,
      gpuMemoryUtilization: 0.95,
      log,
    });
  });

  after(async () => {
    await pool?.close();
    await context?.dispose();
    await model?.dispose();
    await llama?.dispose();
  });

  it("keeps the first token's leading space: prompt + completion reads as one text", async () => {
    const { response, chunks } = await complete();
    assert.match(response, /^ \S/, `the completion of "${prompt}" starts with a space`);
    assert.equal(chunks.join(""), response, "the chunks spell the response");
    // The text as the prompt and the completion tokenized together read.
    const whole = model.detokenize(model.tokenize(`${prompt}${response}`));
    assert.equal(`${prompt}${response}`, whole);
  });

  it("stops LlamaCompletion at a stop string with spaces in it", async () => {
    const words = uninterrupted.trim().split(/\s+/);
    for (const stop of [words.slice(2, 4).join(" "), ` ${words[3]}`, words.slice(1, 4).join(" ")]) {
      const at = uninterrupted.indexOf(stop);
      assert.ok(at > 0, `"${stop}" is in the uninterrupted text`);
      const { response, stopReason } = await complete([stop]);
      assert.equal(stopReason, "customStopTrigger", `"${stop}" stops it`);
      assert.equal(response, uninterrupted.slice(0, at), `the text before "${stop}"`);
    }
  });

  it("gives a model thread the same text and stops, on the plain path and the token loop", async () => {
    const words = uninterrupted.trim().split(/\s+/);
    const stop = words.slice(2, 4).join(" ");
    const before = uninterrupted.slice(0, uninterrupted.indexOf(stop));
    for (const logprobs of [undefined, 2]) {
      const extra = logprobs === undefined ? {} : { logprobs };
      const plain = await run(greedyTask(prompt, 48, extra));
      assert.equal(plain.text, uninterrupted, `the whole text (logprobs ${logprobs})`);
      const stopped = await run(greedyTask(prompt, 48, { ...extra, stop: [stop] }));
      assert.equal(stopped.finishReason, "stop", `stopped by "${stop}" (logprobs ${logprobs})`);
      assert.equal(stopped.text, before, `the text before "${stop}" (logprobs ${logprobs})`);
    }
  });
});
