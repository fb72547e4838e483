/**
 * A split GGUF fetched from the (fake) Hugging Face Hub loads in node-llama-cpp from its first part
 * in the cache snapshot, and generates exactly what the same model in one file generates.
 */
import assert from "node:assert/strict";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import { getLlama, type Llama, LlamaCompletion, LlamaLogLevel } from "node-llama-cpp";
import { resolveModels } from "../../gpu-worker/models/resolve-models.js";
import { buildTinyLlamaGguf, buildTinyLlamaGgufSplit } from "../../gpu-worker/models/tiny-llama.js";
import { loadConfig } from "../../shared/config/index.js";
import { silentLogger } from "../../shared/log.js";
import { FakeHfHub } from "../fakes/hf-hub.js";

const options = {
  embeddingLength: 64,
  blockCount: 2,
  headCount: 2,
  feedForwardLength: 128,
  seed: 11,
};

describe("split GGUF from the Hub", () => {
  let llama: Llama;
  let hub: FakeHfHub;
  let dir: string;

  before(async () => {
    llama = await getLlama({ build: "never", gpu: false, logLevel: LlamaLogLevel.error });
    const parts = buildTinyLlamaGgufSplit(options, 3);
    hub = await FakeHfHub.start([
      {
        id: "tiny-org/Split-GGUF",
        files: parts.map((content, index) => ({
          path: `split-Q8_0-0000${index + 1}-of-00003.gguf`,
          content,
        })),
      },
    ]);
    dir = await mkdtemp(path.join(os.tmpdir(), "hf-split-"));
  });

  after(async () => {
    await llama.dispose();
    await hub.close();
    await rm(dir, { recursive: true, force: true });
  });

  const greedy = async (modelPath: string) => {
    const model = await llama.loadModel({ modelPath });
    const context = await model.createContext({ contextSize: 256, sequences: 1, threads: 1 });
    try {
      const completion = new LlamaCompletion({ contextSequence: context.getSequence() });
      return await completion.generateCompletion("Once upon a time", {
        maxTokens: 16,
        temperature: 0,
      });
    } finally {
      await context.dispose();
      await model.dispose();
    }
  };

  it("loads from the first part and generates the single file's greedy text", async () => {
    const [model] = await resolveModels(
      loadConfig({
        MODELS: "tiny-org/Split-GGUF:Q8_0",
        HF_HOME: dir,
        HF_ENDPOINT: hub.url,
      }),
      silentLogger,
      {},
    );
    assert.ok(model);
    assert.equal(model.files.length, 3);
    assert.ok(model.path.endsWith("split-Q8_0-00001-of-00003.gguf"));
    const whole = path.join(dir, "whole.gguf");
    await writeFile(whole, buildTinyLlamaGguf(options));
    const expected = await greedy(whole);
    assert.ok(expected.trim().length > 0);
    assert.equal(await greedy(model.path), expected);
  });
});
