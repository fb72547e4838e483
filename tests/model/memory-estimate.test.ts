/**
 * The memory plan's estimates come from node-llama-cpp for the real file on this machine's
 * backend: they track what loading the model and creating the context actually allocates, grow
 * with sequences, and resolve the default context size the model threads use.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { getLlama, LlamaLogLevel } from "node-llama-cpp";
import { estimateMemory } from "../../gpu-worker/memory/estimate-memory.js";
import { tinyModelPath } from "../support/models.js";

describe("estimateMemory", () => {
  it("estimates what a model thread allocates, per context shape", async (t) => {
    const file = await tinyModelPath();
    const report = await estimateMemory({
      gpu: false,
      models: [
        { name: "four", path: file, contextSize: 1024, sequences: 4 },
        { name: "one", path: file, contextSize: 1024, sequences: 1 },
        { name: "default", path: file, contextSize: undefined, sequences: 1 },
      ],
    });
    assert.equal(report.device, "cpu");
    assert.ok(report.totalBytes > 0 && report.freeBytes > 0);
    const [four, one, byDefault] = report.models;
    assert.ok(four && one && byDefault);
    assert.ok(four.contextBytes > one.contextBytes, "more sequences, more KV cache");
    assert.equal(four.weightsBytes, one.weightsBytes);
    assert.equal(byDefault.contextSize, 2048, "the model's training context (under 4096)");

    // What loading the model with a 1024 × 4 context really takes, as llama.cpp counts it.
    const llama = await getLlama({ build: "never", gpu: false, logLevel: LlamaLogLevel.error });
    try {
      const model = await llama.loadModel({ modelPath: file });
      await model.createContext({ contextSize: 1024, sequences: 4, threads: 1 });
      const used = (await llama.getLlamaMemoryUsage()).cpuRam;
      const estimated = four.weightsBytes + four.contextBytes;
      t.diagnostic(`estimated ${estimated} bytes, llama.cpp reports ${used}`);
      assert.ok(
        estimated >= used * 0.8 && estimated <= used * 1.5,
        `estimate ${estimated} within [0.8, 1.5] × actual ${used}`,
      );
    } finally {
      await llama.dispose();
    }
  });

  it("fails with MODEL_LOAD_FAILED for a file that is not a GGUF model", async () => {
    await assert.rejects(
      estimateMemory({
        gpu: false,
        models: [
          { name: "x", path: new URL(import.meta.url).pathname, contextSize: 256, sequences: 1 },
        ],
      }),
      (error: { code?: string }) => error.code === "MODEL_LOAD_FAILED",
    );
  });
});
