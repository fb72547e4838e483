/**
 * The GPU check's runner, on the machine the kit was carried to (`run.sh` calls it after building
 * the backend). Two commands:
 *
 *   node dist/tests/gpu-check/gpu-check.js write-models --models DIR --big 1b|small
 *   node dist/tests/gpu-check/gpu-check.js run --models DIR --gpu cuda|off --out DIR
 *
 * `run` takes these steps, stopping at the first that fails (its report says which, and why):
 * 0. the backend: node-llama-cpp, asked as the project asks it (`build: "never"`), must load the
 *    kit's own local build for `LLAMA_GPU` (no prebuilt binary travels with the kit);
 * 1. the memory plan for both models at GPU_MEMORY_UTILIZATION 0.5, made by the gpu-worker's own
 *    code, then each model loaded alone, as a model thread loads it, next to what node-llama-cpp
 *    and nvidia-smi then report; then each model's first request after the load against its
 *    second, without and with the model thread's warm-up (`first-request.ts`);
 * 2. node-llama-cpp alone against the whole stack on the big model, 1 and 8 requests at once;
 *    then the floor under the stack's time to first token on this machine: its process hops with
 *    no work in them (`tests/bench/hops.ts`);
 * 3. cancellation latency through the stack, alone and among 7 other jobs;
 * 4. a clean shutdown (SIGTERM: both processes exit 0, no abort).
 * It writes `gpu-check.json`, `gpu-check.md` and `stack.log` to `--out`.
 */
import { spawn } from "node:child_process";
import { once } from "node:events";
import { readFile, writeFile } from "node:fs/promises";
import path from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { getLlama, LlamaLogLevel } from "node-llama-cpp";
import { checkMemory } from "../../gpu-worker/memory/check-memory.js";
import { resolveModels } from "../../gpu-worker/models/resolve-models.js";
import { ThreadSpares } from "../../gpu-worker/pool/thread-spares.js";
import { loadConfig } from "../../shared/config/index.js";
import { createLogger } from "../../shared/log.js";
import type { ModelThreadOptions } from "../../shared/protocol/index.js";
import { percentile } from "../bench/bench-stats.js";
import { measureDirect, measureStack } from "../bench/generation-measures.js";
import { measureHops } from "../bench/hops.js";
import { TestStack } from "../support/stack.js";
import {
  BIG_MODEL_SIZES,
  type BigModelSize,
  type CheckModel,
  writeCheckModels,
} from "./check-models.js";
import { type CheckReport, formatReport } from "./check-report.js";
import { measureFirstRequests } from "./first-request.js";
import type { LoadedModelReport } from "./measure-model.js";
import { processMiB, readGpu } from "./nvidia-smi.js";

const { positionals, values } = parseArgs({
  allowPositionals: true,
  options: {
    models: { type: "string" },
    big: { type: "string", default: "1b" },
    gpu: { type: "string", default: "cuda" },
    out: { type: "string" },
    runs: { type: "string", default: "3" },
    "max-tokens": { type: "string", default: "128" },
    "llama-threads": { type: "string", default: "4" },
    "shell-steps": { type: "string" },
  },
});

const command = positionals[0];
const modelsDir = values.models;
if (modelsDir === undefined) fail("--models DIR is required");

if (command === "write-models") {
  const big = values.big as BigModelSize;
  if (!BIG_MODEL_SIZES.includes(big)) fail(`--big must be one of ${BIG_MODEL_SIZES.join(", ")}`);
  const models = await writeCheckModels(modelsDir, big);
  await writeFile(path.join(modelsDir, "models.json"), JSON.stringify(models, null, 2));
  for (const model of models) {
    process.stdout.write(
      `${model.name}: ${(model.parameters / 1e6).toFixed(1)}M parameters, ${(model.fileBytes / 2 ** 20).toFixed(1)} MiB, written in ${(model.writeMs / 1000).toFixed(1)} s\n`,
    );
  }
  process.exit(0);
}
if (command !== "run") fail('the command must be "write-models" or "run"');

const outDir = values.out ?? fail("--out DIR is required");
if (values.gpu !== "cuda" && values.gpu !== "off") fail("--gpu must be cuda or off");
const gpuEnv = values.gpu;
const runs = positiveInt("runs");
const maxTokens = positiveInt("max-tokens");
const llamaThreads = positiveInt("llama-threads");
const prompt = "Once upon a time the dog";
const utilization = "0.5";
const sequences = 8;

const models = JSON.parse(
  await readFile(path.join(modelsDir, "models.json"), "utf8"),
) as CheckModel[];
const tiny = models.find((model) => model.name === "tiny");
const big = models.find((model) => model.name === "big");
if (tiny === undefined || big === undefined) fail("models.json must list the tiny and big models");

const report: CheckReport = {
  startedAt: new Date().toISOString(),
  gpu: gpuEnv,
  settings: { utilization, sequences, llamaThreads, runs, maxTokens },
  shellSteps: await readShellSteps(values["shell-steps"]),
  models,
  steps: [],
};
/**
 * The stack's processes get a clean environment (tests/support/stack.ts), so what the GPU machine
 * needs to find its driver and CUDA libraries is passed on by name.
 */
const gpuRuntimeEnv = Object.fromEntries(
  Object.entries(process.env).filter(
    (entry): entry is [string, string] =>
      entry[1] !== undefined && /^(LD_LIBRARY_PATH|CUDA_.+|NVIDIA_.+)$/.test(entry[0]),
  ),
);
const stackEnv = {
  ...gpuRuntimeEnv,
  MODELS: `tiny=${tiny.path},big=${big.path}`,
  LLAMA_GPU: gpuEnv,
  GPU_MEMORY_UTILIZATION: utilization,
  MODEL_SEQUENCES: String(sequences),
  LLAMA_THREADS: String(llamaThreads),
};
let stack: TestStack | undefined;
/** What the gpu-worker hands each model's threads, as the memory plan step made it. */
const threadOptions: ModelThreadOptions[] = [];

try {
  report.gpuBefore = await readGpu();
  await step("backend", backend);
  await step("memory plan", memoryPlan);
  await step("first request after load", firstRequest);
  await step("node-llama-cpp vs stack", throughput);
  await step("hops floor", hopsFloor);
  await step("cancellation", cancellation);
  await step("shutdown", shutdown);
} catch (error) {
  report.failedStep = report.steps.at(-1)?.name;
  report.error = error instanceof Error ? (error.stack ?? error.message) : String(error);
} finally {
  if (stack !== undefined) {
    await writeFile(path.join(outDir, "stack.log"), `${stack.logs.join("\n")}\n`);
    await stack.stop().catch(() => {});
  }
  report.finishedAt = new Date().toISOString();
  await writeFile(path.join(outDir, "gpu-check.json"), `${JSON.stringify(report, null, 2)}\n`);
  await writeFile(path.join(outDir, "gpu-check.md"), formatReport(report));
}
if (report.failedStep !== undefined) {
  process.stderr.write(`GPU check failed at step "${report.failedStep}":\n${report.error}\n`);
  process.exit(1);
}
process.stdout.write(`GPU check passed; report in ${outDir}/gpu-check.md\n`);
// The private redis-server the stack used stops with this process.
process.exit(0);

/** Runs one step, timing it; its result lands in the report even when a later step fails. */
async function step(name: string, run: () => Promise<Record<string, unknown>>): Promise<void> {
  process.stdout.write(`[gpu-check] step: ${name}\n`);
  const entry: CheckReport["steps"][number] = { name, ms: 0, result: {} };
  report.steps.push(entry);
  const start = performance.now();
  try {
    entry.result = await run();
  } finally {
    entry.ms = Math.round(performance.now() - start);
  }
  process.stdout.write(`[gpu-check] step done: ${name} (${(entry.ms / 1000).toFixed(1)} s)\n`);
}

/** Step 0: the backend node-llama-cpp loads for `LLAMA_GPU` is the kit's own build. */
async function backend(): Promise<Record<string, unknown>> {
  const gpu = gpuEnv === "off" ? (false as const) : ("cuda" as const);
  const llama = await getLlama({ build: "never", gpu, logLevel: LlamaLogLevel.error });
  try {
    const result = {
      gpu: llama.gpu,
      buildType: llama.buildType,
      deviceNames: await llama.getGpuDeviceNames(),
      vram: await llama.getVramState(),
    };
    if (llama.gpu !== gpu || llama.buildType !== "localBuild") {
      throw new Error(
        `node-llama-cpp loaded a ${llama.buildType} ${llama.gpu || "cpu"} backend, not the kit's local ${gpu || "cpu"} build`,
      );
    }
    return result;
  } finally {
    await llama.dispose();
  }
}

/** Step 1: the gpu-worker's memory plan, then each model loaded alone in a child process. */
async function memoryPlan(): Promise<Record<string, unknown>> {
  const lines: string[] = [];
  const log = createLogger("gpu-check", { write: (line) => lines.push(line) });
  const config = loadConfig({ ...stackEnv, PATH: process.env.PATH ?? "" });
  const resolved = await resolveModels(config, log, { terminal: undefined });
  // One spare thread, as the gpu-worker's first, runs the estimate; stopped once it is made.
  const spares = new ThreadSpares({
    count: 0,
    backend: {
      gpu: config.gpu,
      gpuMemoryUtilization: config.gpuMemoryUtilization,
      deltaWindowMs: config.deltaWindowMs,
    },
  });
  const plan = await checkMemory(resolved, config, spares, log).finally(() => spares.close());
  const loaded = [];
  for (const model of resolved) {
    const planned = plan.models.find((line) => line.name === model.name);
    // What the gpu-worker hands each model thread (gpu-worker.ts → ModelPool.start).
    const options: ModelThreadOptions = {
      modelName: model.name,
      modelPath: model.path,
      contextSize: planned?.contextSize ?? model.settings.contextSize,
      sequences: model.settings.sequences,
      llamaThreads: model.settings.llamaThreads,
      gpu: config.gpu,
      gpuMemoryUtilization: config.gpuMemoryUtilization,
      vramCapBytes: planned?.threadVramCapBytes,
      promptCache: config.promptCache,
      deltaWindowMs: config.deltaWindowMs,
    };
    threadOptions.push(options);
    const before = await readGpu();
    const { report: child, gpu } = await loadInChild(options);
    loaded.push({
      name: model.name,
      planned,
      loaded: child,
      nvidiaSmi:
        gpu === undefined
          ? undefined
          : {
              processMiB: processMiB(gpu, child.pid),
              gpuUsedMiB: gpu.memoryUsedMiB,
              gpuUsedGrowthMiB: gpu.memoryUsedMiB - (before?.memoryUsedMiB ?? 0),
            },
    });
  }
  return { planTable: lines, plan, loaded };
}

/** Step 1, continued: each model's first request after the load, then its second. */
async function firstRequest(): Promise<Record<string, unknown>> {
  if (threadOptions.length === 0) throw new Error("the memory plan step made no thread options");
  return { ...(await measureFirstRequests(threadOptions)) };
}

/** Loads one model in `measure-model.js`; reads nvidia-smi while the child holds it. */
async function loadInChild(options: ModelThreadOptions) {
  const script = fileURLToPath(new URL("./measure-model.js", import.meta.url));
  const child = spawn(process.execPath, [script, JSON.stringify(options)], {
    stdio: ["pipe", "pipe", "inherit"],
  });
  const exited = once(child, "exit");
  const lines = createInterface({ input: child.stdout });
  // The report is the first line that is a JSON object (llama.cpp may print lines of its own).
  const reported = new Promise<string>((resolve) =>
    lines.on("line", (line) => {
      if (line.startsWith("{")) resolve(line);
      else process.stdout.write(`[${options.modelName}] ${line}\n`);
    }),
  );
  const first = await Promise.race([
    reported,
    exited.then(([code]) => {
      throw new Error(`loading ${options.modelName} failed: its process exited with ${code}`);
    }),
  ]);
  const report = JSON.parse(first) as LoadedModelReport;
  const gpu = await readGpu();
  child.stdin.end();
  const [code] = await exited;
  if (code !== 0)
    throw new Error(`the process that loaded ${options.modelName} exited with ${code}`);
  return { report, gpu };
}

/** Step 2: the big model, node-llama-cpp alone and through the stack, 1 and 8 at once. */
async function throughput(): Promise<Record<string, unknown>> {
  const shape = { prompt, maxTokens, runs, warmupRuns: 1 };
  const direct = {
    modelPath: big?.path ?? "",
    gpu: gpuEnv === "off" ? (false as const) : ("cuda" as const),
    llamaThreads,
    contextSize: 2048,
  };
  const direct1 = await measureDirect({ ...direct, ...shape, concurrent: 1 });
  const direct8 = await measureDirect({ ...direct, ...shape, concurrent: sequences });
  const start = performance.now();
  stack = await TestStack.start({ models: stackEnv.MODELS, env: stackEnv, label: "gpu-check" });
  const stackStartMs = performance.now() - start;
  const gpu = await readGpu();
  const stack1 = await measureStack(stack, { ...shape, model: "big", concurrent: 1 });
  const stack8 = await measureStack(stack, { ...shape, model: "big", concurrent: sequences });
  return {
    stackStartMs,
    gpuWorkerMiB: processMiB(gpu, stack.gpuWorkers[0]?.pid),
    gpuUsedMiBWithStack: gpu?.memoryUsedMiB,
    direct1,
    direct8,
    stack1,
    stack8,
  };
}

/** Step 2, continued: the stack's process hops with nothing in them, on the stack's Redis. */
async function hopsFloor(): Promise<Record<string, unknown>> {
  const redisUrl = stack?.redisUrl ?? fail("the stack is not running");
  const { backToBack, idle } = await measureHops({ redisUrl, runs: 100 });
  return {
    runs: 100,
    backToBackMsP50: percentile(backToBack, 50),
    backToBackMsP90: percentile(backToBack, 90),
    idleMsP50: percentile(idle, 50),
    idleMsP90: percentile(idle, 90),
  };
}

/** Step 3: cancels a long job at its first chunk, alone and among 7 other jobs. */
async function cancellation(): Promise<Record<string, unknown>> {
  const running = stack ?? fail("the stack is not running");
  const alone = [];
  for (let run = 0; run < runs; run += 1) alone.push(await cancelOne(running));
  const others = Array.from({ length: sequences - 1 }, () =>
    measureStack(running, { prompt, maxTokens, runs: 1, concurrent: 1, model: "big" }),
  );
  const amongSeven = await cancelOne(running);
  await Promise.all(others);
  // The sequence the cancelled job held serves the next job.
  await measureStack(running, { prompt, maxTokens: 16, runs: 1, concurrent: 1, model: "big" });
  return { alone, amongSeven, nextJobCompleted: true };
}

/**
 * Starts a 1,500-token job and cancels it when its first chunk arrives; the latency runs from the
 * cancel request to the end of the job's stream, as a caller sees it.
 */
async function cancelOne(running: TestStack): Promise<{ latencyMs: number; chunksAfter: number }> {
  const job = await running.run({
    model: "big",
    prompt,
    sampling_params: { max_tokens: 1500, temperature: 0 },
  });
  let cancelledAt = 0;
  let chunksAfter = -1;
  const { status } = await running.streamAll(job.id, () => {
    chunksAfter += 1;
    if (cancelledAt !== 0) return;
    cancelledAt = performance.now();
    void running.post(`/cancel/${job.id}`, {});
  });
  const latencyMs = performance.now() - cancelledAt;
  if (cancelledAt === 0 || status !== "CANCELLED") {
    throw new Error(`job ${job.id} was to be cancelled, but ended ${status}`);
  }
  return { latencyMs, chunksAfter };
}

/** Step 4: SIGTERM; both processes must exit 0 with no abort in their logs. */
async function shutdown(): Promise<Record<string, unknown>> {
  const running = stack ?? fail("the stack is not running");
  const start = performance.now();
  running.signal("SIGTERM");
  const codes = await Promise.race([
    running.exited(),
    new Promise<never>((_, reject) =>
      setTimeout(() => reject(new Error("the stack did not exit within 40 s of SIGTERM")), 40_000),
    ),
  ]);
  const ms = performance.now() - start;
  const aborted = running.logs.filter((line) => /SIGABRT|Aborted|core dumped/i.test(line));
  if (codes.some((code) => code !== 0) || aborted.length > 0) {
    throw new Error(`unclean shutdown: exit codes ${codes.join(", ")}; ${aborted.join(" | ")}`);
  }
  return { ms, exitCodes: codes };
}

async function readShellSteps(file: string | undefined): Promise<Record<string, number>> {
  if (file === undefined) return {};
  const steps: Record<string, number> = {};
  for (const line of (await readFile(file, "utf8")).split("\n")) {
    const [name, seconds] = line.split("\t");
    if (name && seconds) steps[name] = Number(seconds);
  }
  return steps;
}

function positiveInt(name: "runs" | "max-tokens" | "llama-threads"): number {
  const value = Number(values[name]);
  if (!Number.isInteger(value) || value < 1) fail(`--${name} must be a whole number ≥ 1`);
  return value;
}

function fail(message: string): never {
  process.stderr.write(`gpu-check: ${message}\n`);
  process.exit(2);
}
