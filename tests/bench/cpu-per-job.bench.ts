/**
 * `npm run bench -- cpu-per-job`: the CPU time each process of the stack spends per job (user +
 * system, from /proc), which, unlike latency, hardly depends on what else the machine does:
 * the pipeline's own cost, to compare revisions with. Two loads on the generated tiny model:
 * 4-token jobs one at a time (admission, hand-over, a few replies, the end), and rounds of 8
 * concurrent 64-token jobs (`MODEL_SEQUENCES=8`). The gpu-worker's figure includes its model
 * thread's generation; Redis's command count (`INFO commandstats`, the commands inside Lua scripts
 * included) is exact on the benchmarks' private redis-server. `BENCH_RUNS` sets the jobs of each
 * load (default 200). Linux only.
 *
 *   npm run bench -- cpu-per-job
 */
import { readFileSync } from "node:fs";
import { Redis } from "ioredis";
import { tinyModelPath } from "../support/models.js";
import { TestStack } from "../support/stack.js";
import { benchRuns, print } from "./bench-stats.js";
import { closeLeanHttp } from "./lean-http.js";
import { stackComplete } from "./stack-complete.js";

const jobs = Math.max(8, Math.round(benchRuns(200) / 8) * 8);

/** Commands Redis has run so far, Lua scripts' own commands included (`INFO commandstats`). */
async function redisCommands(url: string): Promise<number> {
  const redis = new Redis(url);
  try {
    const info = await redis.info("commandstats");
    return [...info.matchAll(/^cmdstat_\w+:calls=(\d+)/gm)].reduce(
      (sum, m) => sum + Number(m[1]),
      0,
    );
  } finally {
    redis.disconnect();
  }
}

/** CPU seconds a process has used so far (its threads included). */
function cpuSeconds(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]?.split(" ") ?? [];
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

const stack = await TestStack.start({
  models: `bench=${await tinyModelPath()}`,
  env: { MODEL_SEQUENCES: "8", CONTEXT_SIZE: "2048", LLAMA_THREADS: "1" },
  label: "bench-cpu",
});

const complete = (prompt: string, maxTokens: number) => stackComplete(stack, prompt, maxTokens);

const prompt = (index: number) => `${["Once", "The", "A", "My"][index % 4]} ${index} upon a time`;

try {
  const orchestratorPid = stack.orchestrator?.pid;
  const gpuWorkerPid = stack.gpuWorkers[0]?.pid;
  if (orchestratorPid === undefined || gpuWorkerPid === undefined) {
    throw new Error("the stack's processes are not running");
  }
  const measure = async (load: () => Promise<void>) => {
    const commands = await redisCommands(stack.redisUrl);
    const before = [cpuSeconds(orchestratorPid), cpuSeconds(gpuWorkerPid)] as const;
    await load();
    return {
      orchestrator: ((cpuSeconds(orchestratorPid) - before[0]) * 1000) / jobs,
      gpuWorker: ((cpuSeconds(gpuWorkerPid) - before[1]) * 1000) / jobs,
      // Less the INFO calls' own: a rough count when REDIS_URL is shared with other work.
      redisCommands: ((await redisCommands(stack.redisUrl)) - commands - 2) / jobs,
    };
  };
  for (let i = 0; i < 20; i += 1) await complete(prompt(1000 + i), 4);
  const sequential = await measure(async () => {
    for (let i = 0; i < jobs; i += 1) await complete(prompt(i), 4);
  });
  const concurrent = await measure(async () => {
    for (let round = 0; round < jobs / 8; round += 1) {
      await Promise.all(Array.from({ length: 8 }, (_, i) => complete(prompt(round * 8 + i), 64)));
    }
  });
  const f = (ms: number) => ms.toFixed(2);
  print([
    `CPU time per job (user + system), generated tiny llama, ${jobs} jobs per load.`,
    "",
    "| load | orchestrator (ms/job) | gpu-worker, model thread included (ms/job) | Redis commands per job |",
    "|---|---|---|---|",
    `| 4-token jobs, one at a time | ${f(sequential.orchestrator)} | ${f(sequential.gpuWorker)} | ${sequential.redisCommands.toFixed(0)} |`,
    `| 64-token jobs, 8 at once | ${f(concurrent.orchestrator)} | ${f(concurrent.gpuWorker)} | ${concurrent.redisCommands.toFixed(0)} |`,
  ]);
} finally {
  closeLeanHttp();
  await stack.stop();
}
