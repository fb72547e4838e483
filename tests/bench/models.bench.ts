/**
 * `npm run bench -- models [--jobs=150] [--rounds=5] [--starts=3]`: models on demand, on
 * generated tiny models (CPU, `LLAMA_THREADS=1`).
 *
 * (a) Time to first token of a job for a cold model (the stack loads it: `KEEP_ALIVE=0` unloads
 *     it again after each job), against node-llama-cpp's own load of the same file (a fresh
 *     `getLlama`, `loadModel`, `createContext`) plus its first token. Goal: ≤ 1.2× + 50 ms. Also
 *     shown: node-llama-cpp's load with its backend already up (what the pool's warm threads,
 *     `WARM_THREADS`, have ready).
 * (b) An interleaved workload over 3 models with a budget that holds 2: `--jobs` jobs in the order
 *     A B C A B C …, 8 in flight, 16 tokens each; jobs/s and loads, against a naive policy (run in
 *     this process on node-llama-cpp: 2 models held, the least recently used one swapped out
 *     whenever the next job needs a model not held). Goal: ≥ 3× fewer loads, higher jobs/s.
 * (c) `npm start` (its launcher) to the first token of a job for the first model, with 1 model and
 *     with 6 configured (all preloaded: they fit), alternating. Goal: equal within noise.
 */
import { readFile } from "node:fs/promises";
import {
  getLlama,
  type Llama,
  LlamaCompletion,
  LlamaLogLevel,
  type LlamaModel,
} from "node-llama-cpp";
import { KeyRing } from "../../shared/crypto/index.js";
import { freePort } from "../../shared/redis/index.js";
import { tinyModelPath } from "../support/models.js";
import { spawnNpmStart } from "../support/npm-start.js";
import { TestStack } from "../support/stack.js";
import { benchOption, percentile, print } from "./bench-stats.js";
import { closeLeanHttp, requestJson } from "./lean-http.js";
import { stackComplete } from "./stack-complete.js";

const jobs = benchOption("jobs", 150);
const rounds = benchOption("rounds", 5);
const starts = benchOption("starts", 3);
const prompt = "Once upon a time";
const f = (value: number, digits = 0) => value.toFixed(digits);

const paths = await Promise.all([11, 12, 13, 14, 15, 16].map((seed) => tinyModelPath({ seed })));
const [pathA = "", pathB = "", pathC = ""] = paths;

/**
 * node-llama-cpp alone: a fresh getLlama (or `backend`, one already up), the model, a context, and
 * its first token.
 */
async function rawColdFirstToken(modelPath: string, backend?: Llama): Promise<number> {
  const start = performance.now();
  const llama =
    backend ?? (await getLlama({ build: "never", gpu: false, logLevel: LlamaLogLevel.error }));
  const model = await llama.loadModel({ modelPath });
  const context = await model.createContext({ contextSize: 512, sequences: 1, threads: 1 });
  const completion = new LlamaCompletion({ contextSequence: context.getSequence() });
  let first = 0;
  await completion.generateCompletion(prompt, {
    maxTokens: 4,
    temperature: 0,
    onToken: () => {
      first ||= performance.now();
    },
  });
  if (backend === undefined) await llama.dispose();
  else await model.dispose();
  return first - start;
}

async function coldStart(): Promise<string[]> {
  const stack = await TestStack.start({
    models: `a=${pathA}?preload=false`,
    env: { MODEL_SEQUENCES: "1", CONTEXT_SIZE: "512", KEEP_ALIVE: "0", LOG_LEVEL: "info" },
    readyModels: 0,
    label: "bench-models-cold",
  });
  const raw: number[] = [];
  const rawBackendUp: number[] = [];
  const cold: number[] = [];
  const backend = await getLlama({ build: "never", gpu: false, logLevel: LlamaLogLevel.error });
  try {
    // The gpu-worker announces the model cold once it started.
    while (
      ((await stack.get("/health")) as { models: { state: string }[] }).models[0]?.state !== "cold"
    ) {
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    for (let round = 0; round < rounds; round += 1) {
      raw.push(await rawColdFirstToken(pathA));
      rawBackendUp.push(await rawColdFirstToken(pathA, backend));
      const unloads = stack.logs.filter((line) => line.includes("model unloaded")).length;
      cold.push((await stackComplete(stack, prompt, 4)).ttftMs);
      while (stack.logs.filter((line) => line.includes("model unloaded")).length === unloads) {
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    }
  } finally {
    await stack.stop();
    await backend.dispose();
  }
  const rawP50 = percentile(raw, 50);
  const coldP50 = percentile(cold, 50);
  return [
    `| (a) first token of a job for a cold model, p50 (ms) | ${f(rawP50)} (its backend already up: ${f(percentile(rawBackendUp, 50))}) | ${f(coldP50)} (${f(coldP50 / rawP50, 2)}×) | ≤ 1.2× + 50 ms = ${f(rawP50 * 1.2 + 50)} |`,
  ];
}

/** The stack on 3 models with a budget for 2: jobs A B C A B C …, 8 in flight. */
async function interleavedStack(): Promise<{ seconds: number; loads: number; unloads: number }> {
  const stack = await TestStack.start({
    models: `a=${pathA},b=${pathB},c=${pathC}`,
    env: {
      MODEL_SEQUENCES: "2",
      CONTEXT_SIZE: "512",
      MEMORY_BUDGET_MB: "40",
      KEEP_ALIVE: "-1",
      LOG_LEVEL: "info",
    },
    readyModels: 2,
    label: "bench-models-mix",
  });
  try {
    const loadsBefore = stack.logs.filter((line) => line.includes("model ready")).length;
    const start = performance.now();
    let next = 0;
    await Promise.all(
      Array.from({ length: 8 }, async () => {
        while (next < jobs) {
          const model = ["a", "b", "c"][next % 3] ?? "a";
          next += 1;
          const job = (await requestJson(`${stack.url}/runsync`, {
            input: {
              encrypted_input: stack.encrypt({
                model,
                prompt,
                sampling_params: { max_tokens: 16, temperature: 0 },
              }),
            },
          })) as { id: string; status: string };
          let status = job.status;
          while (status === "IN_QUEUE" || status === "IN_PROGRESS") {
            status = (
              (await requestJson(`${stack.url}/status-sync/${job.id}?wait=60000`)) as {
                status: string;
              }
            ).status;
          }
          if (status !== "COMPLETED") throw new Error(`a job ended ${status}`);
        }
      }),
    );
    const seconds = (performance.now() - start) / 1000;
    return {
      seconds,
      loads: stack.logs.filter((line) => line.includes("model ready")).length - loadsBefore,
      unloads: stack.logs.filter((line) => line.includes("model unloaded")).length,
    };
  } finally {
    await stack.stop();
  }
}

/**
 * The naive policy on node-llama-cpp alone: jobs in arrival order, 8 in flight, 2 models held;
 * a job whose model is not held waits for the least recently used model's jobs to end, which is
 * then unloaded, and loads its own.
 */
async function interleavedNaive(): Promise<{ seconds: number; loads: number }> {
  const llama = await getLlama({ build: "never", gpu: false, logLevel: LlamaLogLevel.error });
  interface Held {
    model: LlamaModel;
    running: Set<Promise<void>>;
    lastUsed: number;
    context: Awaited<ReturnType<LlamaModel["createContext"]>>;
  }
  const held = new Map<string, Held>();
  let loads = 0;
  let clock = 0;
  let queue = Promise.resolve();
  /** The model `name` held, loading it (after unloading the least recently used) if needed. */
  const hold = (name: string, path: string): Promise<Held> => {
    const got = queue.then(async () => {
      let entry = held.get(name);
      if (entry === undefined) {
        if (held.size >= 2) {
          const [victim, old] = [...held].sort(([, a], [, b]) => a.lastUsed - b.lastUsed)[0] ?? [];
          if (victim !== undefined && old !== undefined) {
            held.delete(victim);
            await Promise.all(old.running);
            await old.context.dispose();
            await old.model.dispose();
          }
        }
        const model = await llama.loadModel({ modelPath: path });
        const context = await model.createContext({ contextSize: 512, sequences: 2, threads: 1 });
        entry = { model, context, running: new Set(), lastUsed: 0 };
        held.set(name, entry);
        loads += 1;
      }
      clock += 1;
      entry.lastUsed = clock;
      return entry;
    });
    queue = got.then(() => undefined);
    return got;
  };
  const start = performance.now();
  let next = 0;
  await Promise.all(
    Array.from({ length: 8 }, async () => {
      while (next < jobs) {
        const index = next % 3;
        next += 1;
        const entry = await hold(["a", "b", "c"][index] ?? "a", paths[index] ?? "");
        const run = (async () => {
          // A context of 2 sequences: jobs beyond wait for a free one.
          while (entry.context.sequencesLeft === 0) await new Promise((r) => setTimeout(r, 1));
          const sequence = entry.context.getSequence();
          const completion = new LlamaCompletion({ contextSequence: sequence });
          await completion.generateCompletion(prompt, { maxTokens: 16, temperature: 0 });
          completion.dispose({ disposeSequence: false });
          await sequence.dispose();
        })();
        entry.running.add(run);
        await run;
        entry.running.delete(run);
      }
    }),
  );
  const seconds = (performance.now() - start) / 1000;
  await llama.dispose();
  return { seconds, loads };
}

/** `npm start` to the first token of a job for the first model, with `count` models configured. */
async function startToFirstToken(count: number): Promise<number> {
  const port = await freePort();
  const models = paths
    .slice(0, count)
    .map((path, index) => `m${index}=${path}`)
    .join(",");
  const start = performance.now();
  const launched = spawnNpmStart({
    MODELS: models,
    PORT: String(port),
    REDIS_PREFIX: `bench-start-${count}-${port}`,
    REDIS_URL: process.env.REDIS_URL ?? "",
    MODEL_SEQUENCES: "1",
    CONTEXT_SIZE: "512",
    DATA_DIR: `/tmp/bench-models-start-${port}`,
  });
  const url = `http://127.0.0.1:${port}`;
  try {
    // Sent as soon as the API answers; it waits for the model in its queue if need be.
    for (;;) {
      try {
        await requestJson(`${url}/health`);
        break;
      } catch {
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
    }
    const key = (await readFile(`/tmp/bench-models-start-${port}/encryption.key`, "utf8")).trim();
    const ring = KeyRing.parse(key);
    let first = 0;
    for (;;) {
      const job = (await requestJson(`${url}/run`, {
        input: {
          encrypted_input: ring.encrypt(
            JSON.stringify({ model: "m0", prompt, sampling_params: { max_tokens: 4 } }),
          ),
        },
      })) as { id?: string; status: string };
      if (job.id === undefined || job.status === "FAILED") {
        await new Promise((resolve) => setTimeout(resolve, 10));
        continue;
      }
      for (;;) {
        const page = (await requestJson(`${url}/stream/${job.id}?wait=10000`)) as {
          stream: unknown[];
          status: string;
        };
        if (page.stream.length > 0) {
          first = performance.now();
          break;
        }
        if (!["IN_QUEUE", "IN_PROGRESS"].includes(page.status)) break;
      }
      if (first > 0) break;
    }
    return first - start;
  } finally {
    launched.launcher.kill("SIGTERM");
    await launched.exited;
  }
}

const lines = ["| measure | node-llama-cpp alone / naive | the pool | goal |", "|---|---|---|---|"];
lines.push(...(await coldStart()));
const pool = await interleavedStack();
const naive = await interleavedNaive();
lines.push(
  `| (b) ${jobs} jobs A B C …, 8 in flight, budget for 2 of 3: loads | ${naive.loads} | ${pool.loads} (${pool.unloads} unloads) | ≥ 3× fewer |`,
  `| (b) the same: completed jobs/s | ${f(jobs / naive.seconds, 1)} | ${f(jobs / pool.seconds, 1)} | higher |`,
);
const one: number[] = [];
const six: number[] = [];
for (let run = 0; run < starts; run += 1) {
  one.push(await startToFirstToken(1));
  six.push(await startToFirstToken(6));
}
lines.push(
  `| (c) npm start to the first token, 1 model / 6 models configured, p50 (ms; each run: ${one.map((ms) => f(ms)).join(", ")} / ${six.map((ms) => f(ms)).join(", ")}) | | ${f(percentile(one, 50))} / ${f(percentile(six, 50))} | equal within noise |`,
);
closeLeanHttp();
print(lines);
