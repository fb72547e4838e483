/**
 * `npm run bench -- redis-cluster`: the same stack on one Redis server and on a Redis Cluster of
 * three primaries and three replicas (started here, on this machine), with the same model and
 * prompts, greedy, rounds alternating between the two so both meet the same machine:
 *   (a) jobs/s: rounds of 32 short jobs (8 tokens), 8 in flight;
 *   (b) time to first token and total time of one request at a time (16 tokens).
 * Also, over the rounds of (a): the CPU time Redis spent per job (`INFO cpu`, every server of the
 * cluster summed, replicas included), the commands it ran per job (`INFO commandstats`: a replica
 * counts the writes it applies, so a write counts twice on a cluster with replicas) and the
 * pub/sub messages the cluster bus carried per job (`CLUSTER INFO`: a
 * plain `PUBLISH` goes to every other node, an `SPUBLISH` to its shard's replicas), which depend
 * less on what else the machine runs.
 * Prints a table (cluster / single ratios; the goal is ≥ 0.9×) and writes the figures to
 * `bench/results/redis-cluster-<time>.json`. `BENCH_RUNS` sets the runs of (b) (default 40).
 * `--replicas=0`: three primaries alone. `--redis-core=N`: every Redis server (the single one is
 * then started here too) on CPU N, the stacks and this process on the others, in both
 * configurations: Redis on a host of its own as far as one machine allows (unpinned, on 2 cores,
 * the cluster's six servers take their CPU from the stack's). Needs `taskset`.
 *
 *   npm run bench -- redis-cluster [--replicas=0] [--redis-core=1]
 */
import { execFile } from "node:child_process";
import { mkdir, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { Redis } from "ioredis";
import { packageRoot } from "../../shared/paths.js";
import { startRedisServer } from "../../shared/redis/index.js";
import { tinyModelPath } from "../support/models.js";
import { testRedisUrl } from "../support/redis.js";
import { TestCluster } from "../support/redis-cluster.js";
import { TestStack } from "../support/stack.js";
import { benchOption, benchRuns, percentile, print } from "./bench-stats.js";
import { closeLeanHttp } from "./lean-http.js";
import { stackComplete, type Timed } from "./stack-complete.js";

const runs = Math.max(benchRuns(40), 1);
const rounds = Math.max(4, Math.round(runs / 8));
const modelPath = await tinyModelPath();
const settings = {
  MODEL_SEQUENCES: "8",
  CONTEXT_SIZE: "1024",
  LLAMA_THREADS: "1",
  DASHBOARD_RETENTION: "off",
};

/** `--replicas=0`: a cluster of three primaries alone (what replication costs). */
const replicas = benchOption("replicas", 1);
/** `--redis-core=N`: the Redis servers on CPU N, everything else on the others (-1: unpinned). */
const redisCore = benchOption("redis-core", -1);
const cluster = await TestCluster.start({ replicas });
const ownRedis = redisCore >= 0 ? await startRedisServer() : undefined;
const singleUrl = ownRedis?.url ?? (await testRedisUrl());
const stacks = {
  single: await TestStack.start({
    models: `bench=${modelPath}`,
    env: settings,
    redisUrl: singleUrl,
    label: "bench-single",
  }),
  cluster: await TestStack.start({
    models: `bench=${modelPath}`,
    env: settings,
    redisEnv: cluster.env,
    label: "bench-cluster",
  }),
};
type Kind = keyof typeof stacks;
const kinds: Kind[] = ["single", "cluster"];

/** Sets the CPUs a process (every thread of it) may run on. */
function pin(pid: number | undefined, cpus: string): Promise<void> {
  if (pid === undefined) return Promise.resolve();
  return new Promise((resolve, reject) =>
    execFile("taskset", ["-a", "-p", "-c", cpus, String(pid)], (error) =>
      error ? reject(error) : resolve(),
    ),
  );
}

if (redisCore >= 0) {
  const others = os
    .cpus()
    .map((_, index) => index)
    .filter((index) => index !== redisCore)
    .join(",");
  for (const node of cluster.nodes) await pin(node.pid, String(redisCore));
  await pin(ownRedis?.pid, String(redisCore));
  for (const stack of Object.values(stacks)) {
    for (const child of [stack.orchestrator, ...stack.gpuWorkers]) await pin(child?.pid, others);
  }
  await pin(process.pid, others);
}

interface RedisUsage {
  cpuSeconds: number;
  /** Commands run, scripts' own included; on a cluster, replicas' (applying writes) included. */
  commands: number;
  busMessages: number;
}

/**
 * What Redis has used so far: CPU seconds (`INFO cpu`), commands (`INFO commandstats`) and
 * pub/sub messages sent on the cluster bus.
 */
async function redisUsage(kind: Kind): Promise<RedisUsage> {
  const number = (text: unknown, name: string) =>
    Number(new RegExp(`${name}:([\\d.]+)`).exec(String(text))?.[1] ?? 0);
  const cpuOf = (info: unknown) => number(info, "used_cpu_sys") + number(info, "used_cpu_user");
  const commandsOf = (info: unknown) =>
    [...String(info).matchAll(/cmdstat_\w+:calls=(\d+)/g)].reduce(
      (sum, [, calls]) => sum + Number(calls),
      0,
    );
  if (kind === "single") {
    const redis = new Redis(singleUrl);
    try {
      const info = await redis.info("cpu");
      const commands = commandsOf(await redis.info("commandstats"));
      return { cpuSeconds: cpuOf(info), commands, busMessages: 0 };
    } finally {
      redis.disconnect();
    }
  }
  const usage = { cpuSeconds: 0, commands: 0, busMessages: 0 };
  for (const node of cluster.nodes.filter((each) => each.running)) {
    usage.cpuSeconds += cpuOf(await node.command("INFO", "cpu"));
    usage.commands += commandsOf(await node.command("INFO", "commandstats"));
    const info = String(await node.command("CLUSTER", "INFO"));
    for (const [, sent] of info.matchAll(/cluster_stats_messages_publish(?:shard)?_sent:(\d+)/g)) {
      usage.busMessages += Number(sent);
    }
  }
  return usage;
}

/** `count` short jobs, `inFlight` at a time: jobs per second. */
async function jobsPerSecond(stack: TestStack, round: number, count = 32, inFlight = 8) {
  let next = 0;
  const start = performance.now();
  await Promise.all(
    Array.from({ length: inFlight }, async () => {
      while (next < count) {
        const index = next++;
        await stackComplete(stack, `${["Once", "The", "A", "My"][index % 4]} ${round} ${index}`, 8);
      }
    }),
  );
  return (count * 1000) / (performance.now() - start);
}

try {
  for (const kind of kinds) await stackComplete(stacks[kind], "warm up", 8);
  const rates: Record<Kind, number[]> = { single: [], cluster: [] };
  const used: Record<Kind, RedisUsage & { jobs: number }> = {
    single: { cpuSeconds: 0, commands: 0, busMessages: 0, jobs: 0 },
    cluster: { cpuSeconds: 0, commands: 0, busMessages: 0, jobs: 0 },
  };
  const single: Record<Kind, Timed[]> = { single: [], cluster: [] };
  for (let round = 0; round < rounds; round += 1) {
    for (const kind of round % 2 === 0 ? kinds : [...kinds].reverse()) {
      const before = await redisUsage(kind);
      rates[kind].push(await jobsPerSecond(stacks[kind], round));
      const after = await redisUsage(kind);
      used[kind].cpuSeconds += after.cpuSeconds - before.cpuSeconds;
      used[kind].commands += after.commands - before.commands;
      used[kind].busMessages += after.busMessages - before.busMessages;
      used[kind].jobs += 32;
    }
  }
  for (let i = 0; i < runs; i += 1) {
    for (const kind of i % 2 === 0 ? kinds : [...kinds].reverse()) {
      single[kind].push(await stackComplete(stacks[kind], `The ${i} upon a time`, 16));
    }
  }
  const p50 = (values: number[]) => percentile(values, 50);
  const figures = {
    jobsPerSecond: { single: p50(rates.single), cluster: p50(rates.cluster) },
    ttftMs: {
      single: p50(single.single.map((t) => t.ttftMs)),
      cluster: p50(single.cluster.map((t) => t.ttftMs)),
    },
    totalMs: {
      single: p50(single.single.map((t) => t.totalMs)),
      cluster: p50(single.cluster.map((t) => t.totalMs)),
    },
    redisCpuMsPerJob: {
      single: (used.single.cpuSeconds * 1000) / used.single.jobs,
      cluster: (used.cluster.cpuSeconds * 1000) / used.cluster.jobs,
    },
    commandsPerJob: {
      single: used.single.commands / used.single.jobs,
      cluster: used.cluster.commands / used.cluster.jobs,
    },
    busMessagesPerJob: used.cluster.busMessages / used.cluster.jobs,
  };
  const line = (name: string, values: { single: number; cluster: number }, unit: string) =>
    `| ${name} | ${values.single.toFixed(1)} | ${values.cluster.toFixed(1)} | ${(values.cluster / values.single).toFixed(2)}× | ${unit} |`;
  print([
    `| measure (p50) | single Redis | cluster (3+${3 * replicas}) | cluster / single | unit |`,
    "|---|---|---|---|---|",
    line(
      `jobs/s, 32 jobs of 8 tokens, 8 in flight (${rounds} rounds)`,
      figures.jobsPerSecond,
      "jobs/s",
    ),
    line(`time to first token, one at a time (${runs} runs)`, figures.ttftMs, "ms"),
    line("total time of a 16-token job, one at a time", figures.totalMs, "ms"),
    line("Redis CPU per job, over the rounds of jobs/s", figures.redisCpuMsPerJob, "ms"),
    line(
      "Redis commands per job (cluster: replicas' included)",
      figures.commandsPerJob,
      "commands",
    ),
    `| pub/sub messages on the cluster bus per job, same rounds | – | ${figures.busMessagesPerJob.toFixed(1)} | – | messages |`,
  ]);
  const cpus = os.cpus();
  const record = {
    benchmark: "redis-cluster",
    date: new Date().toISOString(),
    machine: {
      cpu: cpus[0]?.model ?? "unknown",
      cores: cpus.length,
      loadAverage: os.loadavg(),
    },
    settings: { runs, rounds, replicas, redisCore, ...settings },
    figures,
    samples: { rates },
  };
  const dir = path.join(packageRoot(), "bench", "results");
  await mkdir(dir, { recursive: true });
  const file = path.join(dir, `redis-cluster-${record.date.replace(/[:.]/g, "-")}.json`);
  await writeFile(file, `${JSON.stringify(record, null, 2)}\n`);
  process.stdout.write(`\nwritten: ${path.relative(packageRoot(), file)}\n`);
} finally {
  await Promise.all(kinds.map((kind) => stacks[kind].stop()));
  await cluster.close();
  await ownRedis?.close();
  closeLeanHttp();
}
