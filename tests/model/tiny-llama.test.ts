import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import {
  ChatMLChatWrapper,
  getLlama,
  type Llama,
  LlamaChat,
  LlamaCompletion,
  LlamaLogLevel,
  resolveChatWrapper,
} from "node-llama-cpp";
import { tinyModelPath } from "../support/models.js";

describe("tiny llama model (node-llama-cpp)", () => {
  let llama: Llama;

  before(async () => {
    llama = await getLlama({ build: "never", gpu: false, logLevel: LlamaLogLevel.error });
  });

  // Every test awaits its generations before returning, so nothing runs while this disposes.
  after(async () => {
    await llama.dispose();
  });

  it("loads, tokenises with word pieces, and generates the same greedy text twice", async () => {
    const model = await llama.loadModel({ modelPath: await tinyModelPath() });
    const context = await model.createContext({ contextSize: 512, sequences: 1, threads: 1 });
    try {
      // Byte fallback would need 7 tokens (plus the space marker's 3 bytes); pieces need 2.
      const tokens = model.tokenize("the dog");
      assert.equal(tokens.length, 2);
      assert.ok(tokens.length < Buffer.byteLength("the dog"));
      assert.equal(model.detokenize(tokens), "the dog");

      const sequence = context.getSequence();
      const completion = new LlamaCompletion({ contextSequence: sequence });
      const generate = async (maxTokens: number) => {
        await sequence.clearHistory();
        return completion.generateCompletionWithMeta("Once upon a time", {
          maxTokens,
          temperature: 0,
        });
      };
      const first = await generate(24);
      const second = await generate(24);
      assert.ok(first.response.trim().length > 0);
      assert.equal(first.metadata.stopReason, "maxTokens");
      assert.equal(second.response, first.response);

      // Reported, not asserted: tests assert behaviour, numbers belong to benchmarks.
      await sequence.clearHistory();
      let generated = 0;
      const startedAt = performance.now();
      await completion.generateCompletionWithMeta("Once upon a time", {
        maxTokens: 200,
        temperature: 0,
        onToken: (chunk) => {
          generated += chunk.length;
        },
      });
      const seconds = (performance.now() - startedAt) / 1000;
      console.log(
        `default tiny model: ${generated} tokens in ${(seconds * 1000).toFixed(0)} ms = ${(generated / seconds).toFixed(0)} tokens/s (1 thread); sample: ${JSON.stringify(first.response)}`,
      );
      completion.dispose();
    } finally {
      await context.dispose();
      await model.dispose();
    }
  });

  it("the chatml variant gets node-llama-cpp's ChatML wrapper and chats", async () => {
    const model = await llama.loadModel({
      modelPath: await tinyModelPath({ chatTemplate: "chatml" }),
    });
    const context = await model.createContext({ contextSize: 512, sequences: 1, threads: 1 });
    try {
      // The template matches ChatML exactly, so node-llama-cpp prefers its specialised wrapper
      // over the generic Jinja one.
      const resolved = resolveChatWrapper({
        bosString: model.tokens.bosString,
        filename: model.filename,
        fileInfo: model.fileInfo,
        tokenizer: model.tokenizer,
      });
      assert.ok(resolved instanceof ChatMLChatWrapper, resolved?.constructor.name);

      const sequence = context.getSequence();
      const chat = new LlamaChat({ contextSequence: sequence });
      assert.ok(chat.chatWrapper instanceof ChatMLChatWrapper);
      const { contextText } = chat.chatWrapper.generateContextState({
        chatHistory: [
          { type: "system", text: "S" },
          { type: "user", text: "U" },
          { type: "model", response: [] },
        ],
      });
      assert.equal(
        contextText.toString(),
        "BOS<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nU<|im_end|>\n<|im_start|>assistant\n",
      );

      // A history may end with the user turn: LlamaChat appends the empty model turn itself.
      const reply = await chat.generateResponse(
        [
          { type: "system", text: "S" },
          { type: "user", text: "U" },
        ],
        { maxTokens: 12, temperature: 0 },
      );
      assert.ok(reply.response.trim().length > 0);
      assert.equal(reply.metadata.stopReason, "maxTokens");

      await sequence.clearHistory();
      const controller = new AbortController();
      let chunks = 0;
      const aborted = await chat.generateResponse([{ type: "user", text: "U" }], {
        maxTokens: 200,
        temperature: 0,
        signal: controller.signal,
        stopOnAbortSignal: true,
        onTextChunk: () => {
          chunks += 1;
          if (chunks === 3) controller.abort();
        },
      });
      assert.equal(aborted.metadata.stopReason, "abort");
      assert.ok(aborted.response.length > 0);
      chat.dispose();
    } finally {
      await context.dispose();
      await model.dispose();
    }
  });
});
