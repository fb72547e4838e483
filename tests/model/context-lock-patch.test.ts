/**
 * The node-llama-cpp patch in patches/patches.mjs, on the library alone: while two sequences of a
 * context generate long texts, a short job's sequence is released as soon as its text is done and
 * serves the next job, instead of waiting for the long ones to finish (the lock starvation of
 * 3.21.1). Fails on the unpatched library: there the short sequence is released only after both
 * long jobs end.
 */
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { createRequire } from "node:module";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import {
  getLlama,
  type Llama,
  LlamaCompletion,
  type LlamaContext,
  LlamaLogLevel,
} from "node-llama-cpp";
import { tinyModelPath } from "../support/models.js";

const longTokens = 1500;

describe("node-llama-cpp context lock patch", () => {
  let llama: Llama;
  let context: LlamaContext;

  before(async () => {
    llama = await getLlama({ build: "never", gpu: false, logLevel: LlamaLogLevel.error });
    const model = await llama.loadModel({ modelPath: await tinyModelPath() });
    context = await model.createContext({ contextSize: 2048, sequences: 3, threads: 1 });
  });

  after(async () => {
    await llama?.dispose();
  });

  it("is applied to the installed library", async () => {
    const require = createRequire(import.meta.url);
    const entry = require.resolve("node-llama-cpp");
    const file = path.join(path.dirname(entry), "evaluator", "LlamaContext", "LlamaContext.js");
    assert.match(await readFile(file, "utf8"), /secure-llm-pool patch: release the context lock/);
  });

  it("frees a short job's sequence while two long ones still generate, for the next job", async () => {
    const longDone = [false, false];
    let longStarted = 0;
    let markStarted: () => void = () => {};
    const bothStarted = new Promise<void>((resolve) => {
      markStarted = resolve;
    });
    const long = [0, 1].map(async (index) => {
      const sequence = context.getSequence();
      const completion = new LlamaCompletion({ contextSequence: sequence });
      let first = true;
      await completion.generateCompletion(`story ${index}`, {
        maxTokens: longTokens,
        temperature: 0,
        onTextChunk: () => {
          if (!first) return;
          first = false;
          longStarted += 1;
          if (longStarted === 2) markStarted();
        },
      });
      longDone[index] = true;
      completion.dispose({ disposeSequence: false });
      await sequence.dispose();
    });
    await bothStarted;

    // Two short jobs in turn on the one sequence left: the second can only start once the first
    // one's sequence is back, so both must end while the long jobs still run.
    const shortRuns: { released: boolean; longRunning: boolean }[] = [];
    for (const prompt of ["once", "upon"]) {
      const sequence = context.getSequence();
      const completion = new LlamaCompletion({ contextSequence: sequence });
      const text = await completion.generateCompletion(prompt, { maxTokens: 8, temperature: 0 });
      assert.ok(text.length > 0);
      completion.dispose({ disposeSequence: false });
      await sequence.dispose();
      shortRuns.push({ released: sequence.disposed, longRunning: !longDone[0] && !longDone[1] });
    }
    await Promise.all(long);
    assert.deepEqual(shortRuns, [
      { released: true, longRunning: true },
      { released: true, longRunning: true },
    ]);
  });
});
