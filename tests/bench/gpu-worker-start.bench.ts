/**
 * `npm run bench -- gpu-worker-start`: how long a gpu-worker takes from its spawn to its memory
 * plan (logged) and to `gpu-worker ready` (its preloaded model loaded and warmed up), with the
 * generated tiny model on the CPU: `BENCH_RUNS` starts (default 10), each stopped with SIGTERM
 * once ready. `--base=<folder>` names another build's `dist` (e.g. a checkout of an earlier
 * commit, built): its gpu-worker then starts in turn with this one, and both are reported.
 *
 *   npm run bench -- gpu-worker-start --base=/tmp/earlier/dist
 */
import { spawn } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { FernetKey } from "../../shared/crypto/index.js";
import { tinyModelPath } from "../support/models.js";
import { deleteKeysWithPrefix, testRedisUrl, uniquePrefix } from "../support/redis.js";
import { benchRuns, print, row, tableHead } from "./bench-stats.js";

interface StartTimes {
  planMs: number;
  readyMs: number;
}

const runs = benchRuns(10);
const base = process.argv.find((arg) => arg.startsWith("--base="))?.slice("--base=".length);
const thisDist = fileURLToPath(new URL("../../", import.meta.url));
const builds: [string, string][] = [
  ...(base === undefined ? [] : ([["base", path.resolve(base)]] as [string, string][])),
  ["this build", thisDist],
];
const redisUrl = await testRedisUrl();
const prefix = uniquePrefix("bench-start");
const dataDir = await mkdtemp(path.join(os.tmpdir(), "pool-bench-start-"));
const env = {
  PATH: process.env.PATH ?? "",
  HOME: process.env.HOME ?? os.homedir(),
  REDIS_URL: redisUrl,
  MODELS: `tiny=${await tinyModelPath()}`,
  ENCRYPTION_KEY: FernetKey.generate().exportKey(),
  LLAMA_THREADS: "1",
  LLAMA_GPU: "off",
  DATA_DIR: dataDir,
};

/** Each start's own key prefix, its keys deleted at the end. */
const prefixes: string[] = [];

/** One start of the gpu-worker of `dist`, on a key prefix of its own; stopped once ready. */
async function start(dist: string): Promise<StartTimes> {
  const started = performance.now();
  const ownPrefix = `${prefix}-${prefixes.length}`;
  prefixes.push(ownPrefix);
  const child = spawn(process.execPath, [path.join(dist, "gpu-worker", "main.js")], {
    env: { ...env, REDIS_PREFIX: ownPrefix },
    stdio: ["ignore", "pipe", "inherit"],
  });
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  let planMs = Number.NaN;
  let text = "";
  const readyMs = await new Promise<number>((resolve, reject) => {
    child.stdout.setEncoding("utf8");
    child.stdout.on("data", (chunk: string) => {
      text += chunk;
      if (Number.isNaN(planMs) && text.includes("memory plan")) {
        planMs = performance.now() - started;
      }
      if (text.includes("gpu-worker ready")) resolve(performance.now() - started);
    });
    child.once("exit", (code) => reject(new Error(`the gpu-worker exited (${code}):\n${text}`)));
  });
  child.kill("SIGTERM");
  await exited;
  return { planMs, readyMs };
}

const times = new Map<string, StartTimes[]>(builds.map(([name]) => [name, []]));
try {
  for (let run = 0; run < runs; run += 1) {
    for (const [name, dist] of builds) times.get(name)?.push(await start(dist));
  }
} finally {
  for (const own of prefixes) await deleteKeysWithPrefix(redisUrl, own);
  await rm(dataDir, { recursive: true, force: true });
}

const lines = [
  `A gpu-worker from spawn to its memory plan and to \`gpu-worker ready\`: the generated tiny model, CPU, \`LLAMA_THREADS=1\`, default \`WARM_THREADS\`; ${runs} starts${base === undefined ? "" : " of each build, in turn"}.`,
  "",
  ...tableHead,
];
for (const [name, list] of times) {
  const label = base === undefined ? "" : `${name}: `;
  lines.push(
    row(
      `${label}memory plan`,
      list.map((t) => t.planMs),
      "ms",
      0,
    ),
  );
  lines.push(
    row(
      `${label}ready`,
      list.map((t) => t.readyMs),
      "ms",
      0,
    ),
  );
}
print(lines);
