/**
 * Embeddings on real node-llama-cpp threads: a model with the `embeddings` setting gives the same
 * vectors as node-llama-cpp's own `LlamaEmbeddingContext`, in input order, and still serves text;
 * an embeddings job counts as one of its thread's jobs, so with one sequence a text job and an
 * embeddings job run one after the other; `dimensions` other than the model's is refused; a model
 * without the setting refuses embeddings; the memory plan's estimate of the embedding context
 * tracks what creating it allocates.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { getLlama, LlamaLogLevel } from "node-llama-cpp";
import { estimateMemory } from "../../gpu-worker/memory/estimate-memory.js";
import { ModelPool } from "../../gpu-worker/pool/model-pool.js";
import { ThreadSpares } from "../../gpu-worker/pool/thread-spares.js";
import { createLogger } from "../../shared/log.js";
import { tinyModelPath } from "../support/models.js";
import { cosine, embedTask, referenceEmbeddings } from "../support/reference-embeddings.js";
import { greedyTask } from "../support/tasks.js";

const log = createLogger("test", { level: "error" });
const contextSize = 512;
const texts = ["the dog ran home", "a cat sat on the mat", "the sun is a star"];
const noHooks = () => ({ signal: new AbortController().signal, onText: () => {} });

describe("ModelPool with embeddings", () => {
  let pool: ModelPool;
  let modelPath: string;

  before(async () => {
    modelPath = await tinyModelPath();
    pool = await ModelPool.start({
      model: { name: "tiny", path: modelPath },
      threads: 1,
      sequences: 1,
      llamaThreads: 1,
      contextSize,
      gpu: false,
      gpuMemoryUtilization: 0.95,
      embeddings: true,
      log,
    });
  });

  after(async () => {
    await pool?.close();
  });

  it("gives node-llama-cpp's vectors, in input order, with their token counts", async () => {
    const reference = await referenceEmbeddings(modelPath, texts, contextSize);
    const result = await pool.run("embed-1", embedTask([...texts].reverse()), noHooks());
    assert.equal(result.finishReason, "stop");
    assert.equal(result.completionTokens, 0);
    const vectors = [...(result.embeddings ?? [])].reverse();
    assert.equal(vectors.length, texts.length);
    vectors.forEach((vector, index) => {
      const expected = reference.vectors[index] ?? [];
      assert.equal(vector.length, expected.length);
      const similarity = cosine(vector, expected);
      assert.ok(similarity >= 0.9999, `text ${index}: cosine ${similarity}`);
    });
    assert.equal(
      result.promptTokens,
      reference.tokens.reduce((sum, count) => sum + count, 0),
    );
  });

  it("counts an embeddings job as one of the thread's jobs (one sequence: one at a time)", async () => {
    const order: string[] = [];
    const text = pool.run("text-1", greedyTask("the dog", 40), {
      signal: new AbortController().signal,
      onText: () => {},
      onStarted: () => order.push("text started"),
    });
    const embeddings = pool.run("embed-2", embedTask(texts), {
      signal: new AbortController().signal,
      onText: () => {},
      onStarted: () => order.push("embed started"),
    });
    void text.then(() => order.push("text ended"));
    const [textResult, embedResult] = await Promise.all([text, embeddings]);
    assert.equal(textResult.completionTokens, 40, "text still works on the embeddings model");
    assert.equal(embedResult.embeddings?.length, texts.length);
    assert.deepEqual(order, ["text started", "text ended", "embed started"]);
  });

  it("refuses dimensions other than the model's vector size, by name", async () => {
    const size = (await pool.run("embed-3", embedTask(["x"]), noHooks())).embeddings?.[0]?.length;
    assert.ok(size !== undefined && size > 0);
    const same = await pool.run("embed-4", embedTask(["x"], size), noHooks());
    assert.equal(same.embeddings?.[0]?.length, size);
    await assert.rejects(
      pool.run("embed-5", embedTask(["x"], size - 1), noHooks()),
      (error: { code?: string; message: string }) =>
        error.code === "INVALID_REQUEST" &&
        error.message.includes("dimensions") &&
        error.message.includes(String(size)),
    );
  });

  it("fails a text its embedding context cannot hold with PROMPT_TOO_LONG, naming it", async () => {
    await assert.rejects(
      pool.run("embed-6", embedTask(["short", "the dog ran ".repeat(200)]), noHooks()),
      (error: { code?: string; message: string }) =>
        error.code === "PROMPT_TOO_LONG" && /input\[1\] is \d+ tokens/.test(error.message),
    );
    // One of more bytes than any context-full of tokens is refused before it is tokenized.
    await assert.rejects(
      pool.run("embed-7", embedTask(["the dog ran ".repeat(400)]), noHooks()),
      (error: { code?: string; message: string }) =>
        error.code === "PROMPT_TOO_LONG" && /input\[0\] is 4800 bytes/.test(error.message),
    );
  });
});

describe("ModelPool without embeddings", () => {
  it("refuses an embeddings job, naming the setting", async () => {
    const pool = await ModelPool.start({
      model: { name: "plain", path: await tinyModelPath() },
      threads: 1,
      sequences: 1,
      llamaThreads: 1,
      contextSize: 256,
      gpu: false,
      gpuMemoryUtilization: 0.95,
      log,
    });
    try {
      await assert.rejects(
        pool.run("embed-8", embedTask(["x"]), noHooks()),
        (error: { code?: string; message: string }) =>
          error.code === "INVALID_REQUEST" && error.message.includes("?embeddings=true"),
      );
    } finally {
      await pool.close();
    }
  });
});

describe("the memory plan's embedding context", () => {
  it("is estimated from node-llama-cpp, close to what creating it allocates", async (t) => {
    const file = await tinyModelPath();
    const spares = new ThreadSpares({
      count: 0,
      backend: { gpu: false, gpuMemoryUtilization: 0.95, deltaWindowMs: 0 },
    });
    const report = await estimateMemory(
      {
        models: [
          { name: "with", path: file, contextSize: 1024, sequences: 2, embeddings: true },
          { name: "without", path: file, contextSize: 1024, sequences: 2 },
        ],
      },
      spares,
    ).finally(() => spares.close());
    const [withEmbeddings, without] = report.models;
    assert.ok(withEmbeddings && without);
    assert.equal(without.embeddingBytes, 0);
    assert.equal(withEmbeddings.contextBytes, without.contextBytes);
    const estimated = withEmbeddings.embeddingBytes ?? 0;
    const llama = await getLlama({ build: "never", gpu: false, logLevel: LlamaLogLevel.error });
    try {
      const model = await llama.loadModel({ modelPath: file });
      const before = (await llama.getLlamaMemoryUsage()).cpuRam;
      // As the model thread creates it (`thread/load-model.ts`).
      await model.createEmbeddingContext({ contextSize: 1024, batchSize: 1024, threads: 1 });
      const used = (await llama.getLlamaMemoryUsage()).cpuRam - before;
      t.diagnostic(`embedding context: estimated ${estimated} bytes, llama.cpp reports ${used}`);
      assert.ok(
        estimated >= used * 0.8 && estimated <= used * 1.5,
        `estimate ${estimated} within [0.8, 1.5] × actual ${used}`,
      );
    } finally {
      await llama.dispose();
    }
  });
});
