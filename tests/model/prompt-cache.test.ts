/**
 * The prompt cache on real node-llama-cpp threads: sequences keep their tokens between jobs, a job
 * reuses the longest shared prefix (reported as cached tokens) and its greedy text equals a cold
 * run's; a follow-up goes back to the thread that holds its prefix; a cancelled job leaves nothing
 * behind; a prompt that shares nothing gets nothing stale; `promptCache: false` starts every job
 * cold.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { ModelPool, type ModelPoolOptions } from "../../gpu-worker/pool/model-pool.js";
import { createLogger } from "../../shared/log.js";
import type { GenerationTask, TaskMessage, ThreadResult } from "../../shared/protocol/index.js";
import { tinyModelPath } from "../support/models.js";
import { referenceTexts } from "../support/reference.js";
import { greedyTask } from "../support/tasks.js";

const log = createLogger("test", { level: "error" });

/** About 400 tokens of the tiny model's words. */
const story = Array.from({ length: 100 }, (_, index) => `the dog ran to the sun ${index}`).join(
  " ",
);

interface Ran {
  text: string;
  thread: number;
  result: ThreadResult;
}

async function run(pool: ModelPool, task: GenerationTask, signal?: AbortSignal): Promise<Ran> {
  let text = "";
  let thread = -1;
  const result = await pool.run(`job-${Math.random()}`, task, {
    signal: signal ?? new AbortController().signal,
    onText: (piece) => {
      text += piece;
    },
    onStarted: (threadId) => {
      thread = threadId;
    },
  });
  return { text, thread, result };
}

function startPool(modelPath: string, options: Partial<ModelPoolOptions> = {}): Promise<ModelPool> {
  return ModelPool.start({
    model: { name: "tiny", path: modelPath },
    threads: 2,
    sequences: 2,
    llamaThreads: 1,
    contextSize: 2048,
    gpu: false,
    gpuMemoryUtilization: 0.95,
    log,
    ...options,
  });
}

describe("prompt cache", () => {
  let pool: ModelPool;
  let modelPath: string;

  before(async () => {
    modelPath = await tinyModelPath({ chatTemplate: "chatml" });
    pool = await startPool(modelPath);
  });

  after(async () => {
    await pool?.close();
  });

  it("reuses a held prefix: cached tokens reported, text equal to a cold run, same thread", async () => {
    const first = await run(pool, greedyTask(story, 16));
    assert.equal(first.result.cachedTokens, 0, "a fresh pool holds nothing");
    const followUp = `${story}${first.text} and then the cat`;
    const [expected] = await referenceTexts(modelPath, [{ prompt: followUp, maxTokens: 24 }]);
    // Two jobs in between: without routing by prefix, the follow-up would go to the other thread
    // (the least recently used one).
    await run(pool, greedyTask("a bird sat on the door", 8));
    await run(pool, greedyTask("the moon and the sun", 8));
    const second = await run(pool, greedyTask(followUp, 24));
    assert.equal(second.thread, first.thread, "the follow-up ran on the thread holding its prefix");
    assert.equal(second.text, expected);
    assert.ok(
      second.result.cachedTokens >= first.result.promptTokens - 2,
      `cached ${second.result.cachedTokens} of ${second.result.promptTokens}; the first prompt had ${first.result.promptTokens}`,
    );
    assert.ok(second.result.cachedTokens < second.result.promptTokens);
  });

  it("reuses a chat's previous turn (the rendered template)", async () => {
    const turn1: (TaskMessage & { role: "system" | "user" | "assistant" })[] = [
      { role: "system", content: `You tell stories. ${story}` },
      { role: "user", content: "Tell me about the sun." },
    ];
    const first = await run(pool, greedyTask(turn1, 12));
    const turn2: typeof turn1 = [
      ...turn1,
      { role: "assistant", content: first.text },
      { role: "user", content: "And the moon?" },
    ];
    const [expected] = await referenceTexts(modelPath, [{ messages: turn2, maxTokens: 12 }]);
    const second = await run(pool, greedyTask(turn2, 12));
    assert.equal(second.text, expected);
    assert.equal(second.thread, first.thread);
    assert.ok(
      second.result.cachedTokens >= first.result.promptTokens - 2,
      `cached ${second.result.cachedTokens}; the first turn had ${first.result.promptTokens}`,
    );
  });

  it("a job cancelled on a reused sequence leaves nothing behind for the next", async () => {
    const prompt = `${story} the end`;
    const [expected] = await referenceTexts(modelPath, [{ prompt, maxTokens: 20 }]);
    await run(pool, greedyTask(prompt, 4));
    const controller = new AbortController();
    let pieces = 0;
    const cancelled = await pool.run("job-cancel", greedyTask(prompt, 1500), {
      signal: controller.signal,
      onText: () => {
        pieces += 1;
        if (pieces === 3) controller.abort();
      },
    });
    assert.equal(cancelled.finishReason, "cancelled");
    assert.ok(cancelled.cachedTokens > 0, "the cancelled job ran on the reused sequence");
    const again = await run(pool, greedyTask(prompt, 20));
    assert.equal(again.text, expected);
    assert.ok(again.result.cachedTokens > 0);
  });

  it("a prompt that shares nothing gets no stale tokens", async () => {
    const prompt = "my friend the bird";
    const [expected] = await referenceTexts(modelPath, [{ prompt, maxTokens: 30 }]);
    for (let index = 0; index < 4; index += 1) {
      const ran = await run(pool, greedyTask(prompt, 30));
      assert.equal(ran.text, expected);
      // Only the BOS token can be shared with what the sequences held before the first run.
      if (index === 0) assert.ok(ran.result.cachedTokens <= 1, `${ran.result.cachedTokens}`);
    }
  });
});

describe("prompt cache off", () => {
  it("starts every job cold", async () => {
    const modelPath = await tinyModelPath();
    const pool = await startPool(modelPath, { threads: 1, promptCache: false });
    try {
      const [expected] = await referenceTexts(modelPath, [{ prompt: story, maxTokens: 10 }]);
      for (let index = 0; index < 3; index += 1) {
        const ran = await run(pool, greedyTask(story, 10));
        assert.equal(ran.result.cachedTokens, 0);
        assert.equal(ran.text, expected);
      }
    } finally {
      await pool.close();
    }
  });
});
