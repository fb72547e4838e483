/**
 * The byte bound on prompts, on real tokenizers: no text is fewer tokens than its bytes over the
 * model's longest token (`maxTokenBytes`), so the bound never refuses a prompt that fits; and a
 * model thread refuses a prompt over it at once, before tokenizing (a 7 MB prompt took a sequence
 * 3.5 s to tokenize, then failed).
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { getLlama, type Llama, type LlamaModel } from "node-llama-cpp";
import { DEMO_MODEL_OPTIONS } from "../../gpu-worker/models/tiny-llama.js";
import { ModelPool } from "../../gpu-worker/pool/model-pool.js";
import { maxTokenBytes } from "../../gpu-worker/thread/token-bytes.js";
import { ErrorCode, PoolError } from "../../shared/errors/index.js";
import { createLogger } from "../../shared/log.js";
import { sharedModelPath, tinyModelPath } from "../support/models.js";
import { greedyTask } from "../support/tasks.js";

const log = createLogger("test", { level: "error" });

/** Texts that pack many bytes into few tokens: the vocabulary's longest pieces, repeated. */
function denseTexts(model: LlamaModel): string[] {
  const count = model.fileInfo.metadata.tokenizer?.ggml?.tokens?.length ?? 0;
  const pieces = Array.from({ length: count }, (_, token) => token)
    .filter((token) => !model.isSpecialToken(token as never))
    .map((token) => model.detokenize([token as never]))
    .sort((a, b) => Buffer.byteLength(b) - Buffer.byteLength(a));
  const longest = pieces.slice(0, 20);
  return [
    longest.join(""),
    longest.join(" "),
    ` ${longest.join(" ")}`,
    (longest[0] ?? "").repeat(200),
    ` ${(longest[0] ?? "").repeat(200)}`,
    "Once upon a time there was a little dog. ".repeat(50),
    "日本語のテキスト、絵文字 🎉🎉🎉 and ümlauts. ".repeat(20),
  ];
}

describe("prompt bytes on real tokenizers", () => {
  let llama: Llama;
  const models: [string, LlamaModel][] = [];

  before(async () => {
    llama = await getLlama({ build: "never", gpu: false });
    const paths: [string, string | undefined][] = [
      ["tiny", await tinyModelPath()],
      ["demo", await tinyModelPath(DEMO_MODEL_OPTIONS)],
      ["stories260K", await sharedModelPath("stories260K.gguf")],
      ["chatml", await sharedModelPath("random-llama-chatml-tiny.gguf")],
    ];
    for (const [name, modelPath] of paths) {
      if (modelPath === undefined) {
        console.log(`# ../shared/models has no ${name}: skipped`);
        continue;
      }
      models.push([name, await llama.loadModel({ modelPath })]);
    }
  });

  after(async () => {
    for (const [, model] of models) await model.dispose();
    await llama?.dispose();
  });

  it("never counts fewer tokens for a text than its bytes over the longest token", () => {
    for (const [name, model] of models) {
      const bound = maxTokenBytes(model);
      assert.ok(bound !== undefined && bound > 1, `${name}: no bound`);
      for (const text of denseTexts(model)) {
        const tokens = model.tokenize(text, false).length;
        const bytes = Buffer.byteLength(text);
        assert.ok(
          tokens * bound >= bytes,
          `${name}: ${bytes} bytes in ${tokens} tokens, more than ${bound} a token`,
        );
      }
    }
  });
});

describe("a model thread and an oversized prompt", () => {
  let pool: ModelPool;

  before(async () => {
    pool = await ModelPool.start({
      model: { name: "tiny", path: await tinyModelPath() },
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
  });

  it("refuses it by its bytes, before tokenizing, and serves the next job", async () => {
    assert.ok(pool.maxTokenBytes !== undefined);
    const huge = "the dog ran. ".repeat(200_000);
    const run = (prompt: string) =>
      pool.run("job", greedyTask(prompt, 8), {
        signal: new AbortController().signal,
        onText: () => {},
      });
    await assert.rejects(
      run(huge),
      (error: unknown) =>
        error instanceof PoolError &&
        error.code === ErrorCode.PROMPT_TOO_LONG &&
        error.message.includes(`is ${Buffer.byteLength(huge)} bytes`),
    );
    // Within the bound but past the context: the exact check after tokenizing still refuses it.
    const long = "the dog ran. ".repeat(150);
    await assert.rejects(run(long), (error: unknown) =>
      /tokens; this model's context/.test(String(error)),
    );
    assert.equal((await run("the dog")).finishReason, "length");
  });
});
