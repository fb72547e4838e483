/**
 * A model thread evaluates one token before it reports its model loaded (on a GPU, the first
 * evaluation loads the CUDA kernels, or JIT-compiles them, which a first job should not wait for),
 * and empties that sequence again. On a real thread of the pool: the ready report carries the
 * warm-up's time and comes before `ModelPool.start` resolves, the thread holds no token before the
 * first job, and the first job starts on an empty sequence.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { ModelPool } from "../../gpu-worker/pool/model-pool.js";
import { createLogger } from "../../shared/log.js";
import { tinyModelPath } from "../support/models.js";
import { greedyTask } from "../support/tasks.js";
import { waitFor } from "../support/wait-for.js";

describe("model thread warm-up", () => {
  const lines: string[] = [];
  let pool: ModelPool;
  /** The pool's log lines written before `ModelPool.start` resolved. */
  let linesAtStart: Record<string, unknown>[] = [];

  before(async () => {
    const log = createLogger("test", { format: "json", write: (line) => lines.push(line) });
    pool = await ModelPool.start({
      model: { name: "tiny", path: await tinyModelPath() },
      threads: 1,
      sequences: 2,
      llamaThreads: 1,
      contextSize: 512,
      gpu: false,
      gpuMemoryUtilization: 0.95,
      log,
    });
    linesAtStart = lines.map((line) => JSON.parse(line) as Record<string, unknown>);
  });

  after(async () => {
    await pool?.close();
  });

  it("reports how long the warm-up took when the thread is ready", () => {
    const ready = linesAtStart.filter((line) => line.message === "model thread ready");
    assert.equal(ready.length, 1, lines.join("\n"));
    const { warmUpMs } = ready[0] ?? {};
    assert.equal(typeof warmUpMs, "number", `warmUpMs: ${String(warmUpMs)}`);
    assert.ok(Number.isInteger(warmUpMs) && (warmUpMs as number) >= 0, `warmUpMs: ${warmUpMs}`);
  });

  it("leaves no token in the thread's sequences: the prompt cache starts empty", async () => {
    await waitFor(() => pool.threadStats.length > 0, 15_000, "the thread's first stats report");
    const [stats] = pool.threadStats;
    assert.equal(stats?.tokensHeld, 0);
    assert.equal(stats?.sequencesInUse, 0);
    assert.equal(stats?.jobs, 0);
  });

  it("the first job finds an empty sequence; the second reuses what the first left", async () => {
    const hooks = { signal: new AbortController().signal, onText: () => {} };
    // Long against what it generates: a sequence is reused for a prompt that continues at least
    // half of what it holds (sequence-slots.ts).
    const prompt = "the dog ran to the park and the cat sat on the mat by the door of the house";
    const first = await pool.run("first", greedyTask(prompt, 2), hooks);
    assert.equal(first.cachedTokens, 0);
    assert.equal(first.completionTokens, 2);
    // The prompt cache works here, so the 0 above is the warm-up's sequence having been emptied.
    const second = await pool.run("second", greedyTask(prompt, 2), hooks);
    assert.ok(second.cachedTokens > 0, `cachedTokens: ${second.cachedTokens}`);
  });
});
