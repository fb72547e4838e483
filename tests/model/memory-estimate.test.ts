/**
 * The memory plan's estimates come from node-llama-cpp for the real file on this machine's
 * backend: they track what loading the model and creating the context actually allocates, grow
 * with sequences, and resolve the default context size the model threads use.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { getLlama, LlamaLogLevel } from "node-llama-cpp";
import { estimateMemory } from "../../gpu-worker/memory/estimate-memory.js";
import { ThreadSpares } from "../../gpu-worker/pool/thread-spares.js";
import { tinyModelPath } from "../support/models.js";

const backend = { gpu: false, gpuMemoryUtilization: 0.95, deltaWindowMs: 0 } as const;

describe("estimateMemory", () => {
  /** One spare, as a gpu-worker keeps by default (`WARM_THREADS=1`). */
  let spares: ThreadSpares;
  before(() => {
    spares = new ThreadSpares({ count: 1, backend });
  });
  after(() => spares.close());

  it("estimates what a model thread allocates, per context shape", async (t) => {
    const file = await tinyModelPath();
    const report = await estimateMemory(
      {
        models: [
          { name: "four", path: file, contextSize: 1024, sequences: 4 },
          { name: "one", path: file, contextSize: 1024, sequences: 1 },
          { name: "default", path: file, contextSize: undefined, sequences: 1 },
        ],
      },
      spares,
    );
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
      estimateMemory(
        {
          models: [
            { name: "x", path: new URL(import.meta.url).pathname, contextSize: 256, sequences: 1 },
          ],
        },
        spares,
      ),
      (error: { code?: string }) => error.code === "MODEL_LOAD_FAILED",
    );
  });

  it("runs on the spare, which waits again after it (and after a failure)", async () => {
    assert.equal(spares.size, 1);
    const file = await tinyModelPath();
    await estimateMemory(
      { models: [{ name: "a", path: file, contextSize: 256, sequences: 1 }] },
      spares,
    );
    assert.equal(spares.size, 1, "the spare went back");
  });

  it("with no spares kept (WARM_THREADS=0), runs on a thread it stops after", async () => {
    const none = new ThreadSpares({ count: 0, backend });
    try {
      const file = await tinyModelPath();
      const report = await estimateMemory(
        { models: [{ name: "a", path: file, contextSize: 256, sequences: 1 }] },
        none,
      );
      assert.equal(report.models[0]?.contextSize, 256);
      assert.equal(none.size, 0, "no spare is kept");
    } finally {
      await none.close();
    }
  });
});
