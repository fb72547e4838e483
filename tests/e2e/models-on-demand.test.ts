/**
 * Models on demand across the pool, on the real stack (separate processes, real Redis, generated
 * models of 17.3 MiB each by the memory plan at these settings): a budget that holds two of three
 * models, interleaved jobs, loads and unloads read from the registry throughout; a cold model
 * loaded on first use; an idle model unloaded after `KEEP_ALIVE` (its memory released) while a
 * pinned one stays; one load for one cold model whatever the number of gpu-workers; a load taken
 * over when its gpu-worker dies; a model with a running job not unloaded under it.
 */
import assert from "node:assert/strict";
import type { ChildProcess } from "node:child_process";
import { readFileSync } from "node:fs";
import { after, before, describe, it } from "node:test";
import { Redis } from "ioredis";
import { RedisNames } from "../../shared/naming.js";
import { isFinalChunk, type StreamChunk } from "../../shared/protocol/index.js";
import { parseRegistryEntry } from "../../shared/registry/model-registry.js";
import { tinyModelPath } from "../support/models.js";
import { referenceTexts } from "../support/reference.js";
import { type JobView, TestStack, textOf } from "../support/stack.js";
import { waitFor } from "../support/wait-for.js";

/** Deterministic texts: one sequence per thread, every job cold (no batching, no cached prefix). */
const deterministic = { MODEL_SEQUENCES: "1", CONTEXT_SIZE: "512", PROMPT_CACHE: "off" };
/** MiB that hold two of the models (17.3 MiB each), not three. */
const budgetForTwo = "40";

const greedy = (prompt: string, maxTokens = 12) => ({
  prompt,
  sampling_params: { max_tokens: maxTokens, temperature: 0 },
});

function finalOf(view: JobView): Extract<StreamChunk, { done: true }> {
  assert.equal(view.status, "COMPLETED", JSON.stringify(view.error));
  const final = view.output?.find(isFinalChunk);
  assert.ok(final !== undefined, "no final chunk");
  return final;
}

/** Each gpu-worker's models by state, as the registry has them now. */
async function loadedByWorker(redis: Redis, names: RedisNames, models: readonly string[]) {
  const byWorker = new Map<string, string[]>();
  for (const model of models) {
    for (const [worker, value] of Object.entries(await redis.hgetall(names.modelRegistry(model)))) {
      const entry = parseRegistryEntry(value);
      if (entry?.state !== "ready" && entry?.state !== "loading") continue;
      byWorker.set(worker, [...(byWorker.get(worker) ?? []), model]);
    }
  }
  return byWorker;
}

function rssMb(pid: number | undefined): number {
  const line = readFileSync(`/proc/${pid}/status`, "utf8").match(/VmRSS:\s+(\d+)/);
  return Number(line?.[1] ?? 0) / 1024;
}

describe("three models, a budget for two, interleaved jobs", () => {
  let stack: TestStack;
  const paths: Record<string, string> = {};

  before(async () => {
    for (const [name, seed] of [
      ["a", 11],
      ["b", 12],
      ["c", 13],
    ] as const) {
      paths[name] = await tinyModelPath({ seed });
    }
    stack = await TestStack.start({
      models: `a=${paths.a},b=${paths.b},c=${paths.c}`,
      env: {
        ...deterministic,
        MEMORY_BUDGET_MB: budgetForTwo,
        KEEP_ALIVE: "-1",
        MAX_SWAP_WAIT_MS: "1000",
      },
      readyModels: 2,
      label: "on-demand",
    });
  });

  after(async () => {
    await stack?.stop();
  });

  it("preloads what fits, loads the third on demand, never holds more than two, right texts", {
    timeout: 300_000,
  }, async () => {
    const names = new RedisNames(stack.prefix);
    const redis = new Redis(stack.redisUrl);
    const prompts = ["Once upon a time", "The dog", "A little cat"];
    const expected = new Map<string, string[]>();
    for (const model of ["a", "b", "c"]) {
      expected.set(
        model,
        await referenceTexts(
          paths[model] ?? "",
          prompts.map((prompt) => ({ prompt, maxTokens: 12 })),
        ),
      );
    }
    let most = 0;
    let watching = true;
    const watcher = (async () => {
      while (watching) {
        for (const models of (await loadedByWorker(redis, names, ["a", "b", "c"])).values()) {
          most = Math.max(most, models.length);
        }
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
    })();
    try {
      const health = (await stack.get("/health")) as { models: { name: string; state: string }[] };
      assert.deepEqual(
        health.models.map(({ name, state }) => [name, state]),
        [
          ["a", "ready"],
          ["b", "ready"],
          ["c", "cold"],
        ],
      );
      // Interleaved, A B C A B C …, four in flight.
      const order = Array.from({ length: 18 }, (_, index) => index);
      const results: { model: string; prompt: number; view: JobView }[] = [];
      let next = 0;
      await Promise.all(
        Array.from({ length: 4 }, async () => {
          while (next < order.length) {
            const index = next;
            next += 1;
            const model = ["a", "b", "c"][index % 3] ?? "a";
            const prompt = Math.floor(index / 3) % prompts.length;
            const view = await stack.runsync({ model, ...greedy(prompts[prompt] ?? "") });
            results.push({ model, prompt, view });
          }
        }),
      );
      for (const { model, prompt, view } of results) {
        finalOf(view);
        assert.equal(
          textOf(view.output ?? []),
          expected.get(model)?.[prompt],
          `${model} #${prompt}`,
        );
      }
      const firstOfC = results.find(({ model }) => model === "c");
      assert.ok(firstOfC !== undefined);
      assert.ok(
        results.some(({ model, view }) => model === "c" && finalOf(view).timings.load_ms > 0),
        "a job of c waited for its load, and said so",
      );
      assert.ok(
        stack.logs.some((line) => line.includes("model ready") && line.includes("model=c")),
      );
      assert.ok(
        stack.logs.some((line) => line.includes("model unloaded")),
        "room was made",
      );
    } finally {
      watching = false;
      await watcher;
      redis.disconnect();
    }
    assert.ok(most <= 2, `${most} models held at once`);
    assert.equal(most, 2);
  });
});

describe("keep-alive and pinned models", () => {
  let stack: TestStack;

  before(async () => {
    const a = await tinyModelPath({ seed: 21 });
    const b = await tinyModelPath({ seed: 22 });
    stack = await TestStack.start({
      models: `a=${a},b=${b}?pin=true`,
      env: { ...deterministic, KEEP_ALIVE: "2s" },
      label: "keep-alive",
    });
  });

  after(async () => {
    await stack?.stop();
  });

  it("unloads an idle model after KEEP_ALIVE and frees its memory; keeps a pinned one; loads it again on demand", {
    timeout: 120_000,
  }, async () => {
    const pid = stack.gpuWorkers[0]?.pid;
    finalOf(await stack.runsync({ model: "a", ...greedy("Once upon a time") }));
    finalOf(await stack.runsync({ model: "b", ...greedy("Once upon a time") }));
    const loadedRss = rssMb(pid);
    await waitFor(
      () => stack.logs.some((line) => line.includes("model unloaded") && line.includes("model=a")),
      20_000,
      "a to be unloaded",
    );
    const unloadedLine = stack.logs.find((line) => line.includes("model unloaded"));
    assert.match(unloadedLine ?? "", /reason=idle/);
    // The threads' heaps, the model and its context are gone: the process holds less.
    await waitFor(
      () => loadedRss - rssMb(pid) > 5,
      10_000,
      "the unload to free over 5 MB of the gpu-worker's memory",
      50,
    );
    const freedMb = loadedRss - rssMb(pid);
    console.log(
      `# RSS ${loadedRss.toFixed(1)} MB loaded, ${freedMb.toFixed(1)} MB freed by the unload`,
    );
    assert.ok(freedMb > 5, `only ${freedMb.toFixed(1)} MB freed`);
    const health = (await stack.get("/health")) as { models: { name: string; state: string }[] };
    assert.deepEqual(
      health.models.map(({ name, state }) => [name, state]),
      [
        ["a", "cold"],
        ["b", "ready"],
      ],
    );
    assert.ok(
      !stack.logs.some((line) => line.includes("model unloaded") && line.includes("model=b")),
    );
    // Cold, not gone: the next job loads it again.
    const again = finalOf(await stack.runsync({ model: "a", ...greedy("Once upon a time") }));
    assert.ok(again.timings.load_ms > 0, "the job waited for the load");
  });
});

describe("one cold model, two gpu-workers", () => {
  let stack: TestStack;

  before(async () => {
    const a = await tinyModelPath({ seed: 31 });
    stack = await TestStack.start({
      models: `a=${a}?preload=false`,
      env: { ...deterministic, REGISTRY_TTL_MS: "1500" },
      readyModels: 0,
      label: "one-load",
    });
    await stack.addGpuWorker();
  });

  after(async () => {
    await stack?.stop();
  });

  const coldOnBoth = async () =>
    ((await stack.get("/health")) as { models: { coldOn: number }[] }).models[0]?.coldOn === 2;

  it("is loaded once, by one of them, for jobs sent at once", { timeout: 120_000 }, async () => {
    await waitFor(coldOnBoth, 30_000, "both gpu-workers to announce the model cold");
    const views = await Promise.all(
      [1, 2, 3, 4].map(() => stack.runsync({ model: "a", ...greedy("The dog") })),
    );
    for (const view of views) finalOf(view);
    const loads = stack.logs.filter(
      (line) => line.includes("model ready") && line.includes("reason=demand"),
    );
    assert.equal(loads.length, 1, loads.join("\n"));
  });

  it("is loaded by the other when the one loading it dies", { timeout: 120_000 }, async () => {
    // Back to cold: restart the pool's gpu-workers with the model unloaded.
    await stack.killGpuWorkers("SIGKILL");
    await stack.addGpuWorker();
    await stack.addGpuWorker();
    await waitFor(coldOnBoth, 30_000, "both new gpu-workers to announce the model cold");
    const taking = stack.logs.length;
    const job = stack.runsync({ model: "a", ...greedy("The dog") });
    // Whichever takes the load is killed as soon as it says so.
    await waitFor(
      () => stack.logs.slice(taking).some((line) => line.includes("taking a model's load")),
      30_000,
      "a gpu-worker to take the load",
    );
    const alive = (child: ChildProcess) => child.exitCode === null && child.signalCode === null;
    const loader = stack.gpuWorkers.find(
      (child) =>
        alive(child) && stack.logsOf(child).some((line) => line.includes("taking a model's load")),
    );
    assert.ok(loader !== undefined);
    loader.kill("SIGKILL");
    assert.ok(
      !stack.logsOf(loader).some((line) => line.includes("model ready")),
      "killed before it had loaded the model",
    );
    const view = await job;
    finalOf(view);
    const survivor = stack.gpuWorkers.find((child) => child !== loader && alive(child));
    assert.ok(survivor !== undefined);
    assert.ok(
      stack
        .logsOf(survivor)
        .some((line) => line.includes("model ready") && line.includes("reason=demand")),
      "the other gpu-worker loaded it",
    );
  });
});

describe("a model with a running job", () => {
  let stack: TestStack;

  before(async () => {
    const a = await tinyModelPath({ seed: 41 });
    const b = await tinyModelPath({ seed: 42 });
    stack = await TestStack.start({
      models: `a=${a},b=${b}`,
      // Room for one model; a swap is due at once, yet never under a running job.
      env: { ...deterministic, MEMORY_BUDGET_MB: "20", MAX_SWAP_WAIT_MS: "0", KEEP_ALIVE: "-1" },
      readyModels: 1,
      label: "running-job",
    });
  });

  after(async () => {
    await stack?.stop();
  });

  it("is not unloaded under it: the other model waits until it ends", {
    timeout: 120_000,
  }, async () => {
    const long = await stack.run({ model: "a", ...greedy("Once upon a time", 480) });
    await waitFor(
      async () => ((await stack.get(`/status/${long.id}`)) as JobView).status === "IN_PROGRESS",
      30_000,
      "the long job to run",
    );
    const other = await stack.runsync({ model: "b", ...greedy("The dog") });
    const streamed = await stack.streamAll(long.id);
    assert.equal(streamed.status, "COMPLETED");
    const final = streamed.chunks.find(isFinalChunk);
    assert.equal(final?.finish_reason, "length", "the long job ran to its end");
    finalOf(other);
    const unloadedAt = stack.logs.findIndex(
      (line) => line.includes("model unloaded") && line.includes("model=a"),
    );
    const longEnded = stack.logs.findIndex(
      (line) => line.includes("job finished") && line.includes("completionTokens=480"),
    );
    assert.ok(unloadedAt >= 0 && longEnded >= 0, "a was unloaded, after its job");
    assert.ok(longEnded < unloadedAt, "a's job ended before a was unloaded");
  });
});
