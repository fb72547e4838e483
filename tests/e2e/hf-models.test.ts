/**
 * A Hugging Face model served by the real stack: the gpu-worker downloads it from a fake Hub into
 * HF_HOME and serves it; started again with the Hub gone, it serves it from the cache alone. Both
 * times the greedy text equals node-llama-cpp's own output for the model.
 */
import assert from "node:assert/strict";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import { buildTinyLlamaGguf } from "../../gpu-worker/models/tiny-llama.js";
import { FakeHfHub } from "../fakes/hf-hub.js";
import { referenceTexts } from "../support/reference.js";
import { type TestStack as Stack, TestStack, textOf } from "../support/stack.js";

const prompt = "Once upon a time the dog";
const model = buildTinyLlamaGguf({ seed: 21, name: "hub-tiny" });

describe("Hugging Face model through the stack", () => {
  let hub: FakeHfHub;
  let hfHome: string;
  let expected: string;
  let stack: Stack | undefined;

  before(async () => {
    hub = await FakeHfHub.start([
      {
        id: "tiny-org/Hub-Tiny-GGUF",
        files: [
          { path: "hub-tiny-Q8_0.gguf", content: buildTinyLlamaGguf({ seed: 22 }) },
          { path: "hub-tiny-Q4_K_M.gguf", content: model },
        ],
      },
    ]);
    hfHome = await mkdtemp(path.join(os.tmpdir(), "hf-e2e-"));
    const local = path.join(hfHome, "reference.gguf");
    await writeFile(local, model);
    [expected = ""] = await referenceTexts(local, [{ prompt, maxTokens: 24 }]);
  });

  after(async () => {
    await stack?.stop();
    await hub.close();
    await rm(hfHome, { recursive: true, force: true });
  });

  const generate = async (running: Stack) => {
    const view = await running.runsync({
      model: "tiny",
      prompt,
      sampling_params: { max_tokens: 24, temperature: 0 },
    });
    assert.equal(view.status, "COMPLETED", JSON.stringify(view));
    return textOf(view.output ?? []);
  };

  it("downloads on the first start and serves from the cache with the Hub down", async () => {
    const env = { MODELS: "tiny=tiny-org/Hub-Tiny-GGUF", HF_HOME: hfHome, HF_ENDPOINT: hub.url };
    stack = await TestStack.start({ models: env.MODELS, env, label: "hf" });
    assert.equal(await generate(stack), expected);
    assert.ok(stack.logs.some((line) => line.includes("model fetched from Hugging Face")));
    await stack.stop();

    const requests = hub.requests.length;
    await hub.close();
    stack = await TestStack.start({ models: env.MODELS, env, label: "hf-cached" });
    assert.equal(await generate(stack), expected);
    assert.ok(stack.logs.some((line) => line.includes("model found in the Hugging Face cache")));
    assert.equal(hub.requests.length, requests);
  });
});
