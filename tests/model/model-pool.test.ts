/**
 * The model pool on real node-llama-cpp threads: jobs run on free sequences, at most
 * threads × sequences at once; a cancel message ends generation inside the thread, which lives on
 * and serves the next job; closing waits for running jobs instead of killing threads.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { ModelPool } from "../../gpu-worker/pool/model-pool.js";
import { createLogger } from "../../shared/log.js";
import { tinyModelPath } from "../support/models.js";
import { referenceTexts } from "../support/reference.js";
import { greedyTask } from "../support/tasks.js";

const log = createLogger("test", { level: "error" });

const task = greedyTask;

describe("ModelPool", () => {
  let pool: ModelPool;
  let modelPath: string;

  before(async () => {
    modelPath = await tinyModelPath();
    pool = await ModelPool.start({
      model: { name: "tiny", path: modelPath },
      threads: 1,
      sequences: 2,
      llamaThreads: 1,
      contextSize: 1024,
      gpu: false,
      gpuMemoryUtilization: 0.95,
      log,
    });
  });

  after(async () => {
    await pool?.close();
  });

  it("reports its capacity and the context size its threads created", () => {
    assert.equal(pool.capacity, 2);
    assert.equal(pool.contextSize, 1024);
  });

  it("generates the same text as node-llama-cpp directly, streamed in pieces", async () => {
    const [expected] = await referenceTexts(modelPath, [{ prompt: "the dog", maxTokens: 30 }]);
    const pieces: string[] = [];
    const result = await pool.run("job-1", task("the dog", 30), {
      signal: new AbortController().signal,
      onText: (text) => pieces.push(text),
    });
    assert.equal(pieces.join(""), expected);
    assert.ok(pieces.length > 1, "text arrives as it is generated");
    assert.equal(result.finishReason, "length");
    assert.equal(result.completionTokens, 30);
  });

  it("cancels through the thread's message, and the sequence serves the next job", async () => {
    const controller = new AbortController();
    let pieces = 0;
    const started = performance.now();
    let abortedAt = 0;
    const result = await pool.run("job-2", task("a cat", 5000), {
      signal: controller.signal,
      onText: () => {
        pieces += 1;
        if (pieces === 3) {
          abortedAt = performance.now();
          controller.abort();
        }
      },
    });
    const stoppedMs = performance.now() - abortedAt;
    assert.equal(result.finishReason, "cancelled");
    assert.ok(result.completionTokens < 5000);
    assert.ok(stoppedMs < 1000, `generation ended ${Math.round(stoppedMs)} ms after the cancel`);
    assert.ok(abortedAt > started);
    // Both sequences are free again: two jobs at once complete.
    const results = await Promise.all(
      ["x", "y"].map((name) =>
        pool.run(name, task("the sun", 10), {
          signal: new AbortController().signal,
          onText: () => {},
        }),
      ),
    );
    for (const r of results) assert.equal(r.finishReason, "length");
  });

  it("a job cancelled before it starts ends at once as cancelled", async () => {
    const controller = new AbortController();
    controller.abort();
    const result = await pool.run("job-3", task("the door", 100), {
      signal: controller.signal,
      onText: () => assert.fail("no text for a job cancelled before it started"),
    });
    assert.equal(result.finishReason, "cancelled");
    assert.equal(result.completionTokens, 0);
  });

  it("never runs more jobs at once than it has sequences", async () => {
    let running = 0;
    let peak = 0;
    const jobs = Array.from({ length: 6 }, (_, index) => {
      let counted = false;
      return pool
        .run(`job-c${index}`, task("my friend", 40), {
          signal: new AbortController().signal,
          onText: () => {
            if (!counted) {
              counted = true;
              running += 1;
              peak = Math.max(peak, running);
            }
          },
        })
        .finally(() => {
          if (counted) running -= 1;
        });
    });
    const results = await Promise.all(jobs);
    assert.equal(results.length, 6);
    for (const r of results) assert.equal(r.completionTokens, 40);
    assert.ok(peak <= 2, `at most 2 jobs generated at once (saw ${peak})`);
    assert.ok(peak >= 2, "the two sequences were used at once");
  });

  it("fails a prompt that does not fit the context with PROMPT_TOO_LONG", async () => {
    await assert.rejects(
      pool.run("job-long", task("the dog ran ".repeat(700), 4), {
        signal: new AbortController().signal,
        onText: () => {},
      }),
      (error: { code?: string }) => error.code === "PROMPT_TOO_LONG",
    );
  });
});

describe("ModelPool.start", () => {
  it("fails with MODEL_LOAD_FAILED for a file that is not a model", async () => {
    await assert.rejects(
      ModelPool.start({
        model: { name: "broken", path: new URL(import.meta.url).pathname },
        threads: 1,
        sequences: 1,
        llamaThreads: 1,
        contextSize: 256,
        gpu: false,
        gpuMemoryUtilization: 0.95,
        log,
      }),
      (error: { code?: string; message: string }) =>
        error.code === "MODEL_LOAD_FAILED" && error.message.includes("broken"),
    );
  });
});
