/**
 * `npm run bench -- restart`: how long `npm start`'s stack is without a gpu-worker after one
 * crashes. Runs the launcher on the generated tiny model, kills its gpu-worker (SIGKILL) as soon as
 * it serves again, `BENCH_RUNS` times in a row (default 3: waits of 1, 2 and 4 s), and times from
 * the launcher's crash line to the new gpu-worker's start (it announces its models `loading`
 * then, and requests are accepted again), to its model `ready`, and to the end of a job submitted
 * right after the crash. Every `/health` during the outage must answer 200.
 *
 *   BENCH_RUNS=4 npm run bench -- restart
 */
import { spawn, spawnSync } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { FernetKey } from "../../shared/crypto/index.js";
import { freePort } from "../../shared/redis/index.js";
import { tinyModelPath } from "../support/models.js";
import { npmStartEnv, startEntry } from "../support/npm-start.js";
import { deleteKeysWithPrefix, testRedisUrl, uniquePrefix } from "../support/redis.js";
import { benchRuns, print } from "./bench-stats.js";

const runs = benchRuns(3);
const redisUrl = await testRedisUrl();
const prefix = uniquePrefix("bench-restart");
const dataDir = await mkdtemp(path.join(os.tmpdir(), "pool-bench-restart-"));
const port = await freePort();
const url = `http://127.0.0.1:${port}`;
const key = FernetKey.generate();

const launcher = spawn(process.execPath, [startEntry], {
  env: npmStartEnv({
    REDIS_URL: redisUrl,
    REDIS_PREFIX: prefix,
    DATA_DIR: dataDir,
    PORT: String(port),
    ENCRYPTION_KEY: key.exportKey(),
    MODELS: `tiny=${await tinyModelPath()}`,
    LOG_FORMAT: "json",
  }),
  stdio: ["ignore", "pipe", "inherit"],
});
interface Line {
  message: string;
  at: number;
  restart?: number;
  restartInMs?: number;
}
const lines: Line[] = [];
let pending = "";
launcher.stdout.setEncoding("utf8").on("data", (text: string) => {
  const parts = (pending + text).split("\n");
  pending = parts.pop() ?? "";
  for (const part of parts) {
    try {
      const parsed = JSON.parse(part) as Omit<Line, "at">;
      if (typeof parsed.message === "string") lines.push({ ...parsed, at: performance.now() });
    } catch {
      // Not a log line (llama.cpp's own output).
    }
  }
});
const count = (message: string) => lines.filter((line) => line.message === message).length;
const until = async (condition: () => boolean | Promise<boolean>, what: string) => {
  const deadline = performance.now() + 120_000;
  while (!(await condition())) {
    if (launcher.exitCode !== null || performance.now() > deadline) {
      throw new Error(`no ${what}`);
    }
    await sleep(20);
  }
};
const gpuWorkerPid = () =>
  Number(
    spawnSync("pgrep", ["-P", String(launcher.pid), "-f", "gpu-worker/main.js"], {
      encoding: "utf8",
    }).stdout.split("\n")[0],
  );
const submit = async () => {
  const request = { prompt: "the dog", sampling_params: { max_tokens: 16, temperature: 0 } };
  const response = await fetch(`${url}/run`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ input: { encrypted_input: key.encrypt(JSON.stringify(request)) } }),
  });
  return ((await response.json()) as { id: string; status: string }).id;
};
const statusOf = async (id: string) =>
  ((await (await fetch(`${url}/status/${id}`)).json()) as { status: string }).status;

const rows: string[] = [];
try {
  await until(() => count("model ready") === 1 && count("orchestrator ready") === 1, "start");
  for (let run = 1; run <= runs; run += 1) {
    process.kill(gpuWorkerPid(), "SIGKILL");
    await until(() => count("the gpu-worker stopped: restarting it") === run, "crash line");
    const crash = lines.filter((line) => line.message === "the gpu-worker stopped: restarting it")[
      run - 1
    ] as Line;
    const id = await submit();
    let healthOk = 0;
    let healthBad = 0;
    await until(async () => {
      if ((await fetch(`${url}/health`)).status === 200) healthOk += 1;
      else healthBad += 1;
      return count("model ready") === run + 1;
    }, "model ready");
    const at = (message: string) =>
      lines.filter((line) => line.message === message)[run]?.at ?? Number.NaN;
    let endedAt = Number.NaN;
    let status = "IN_QUEUE";
    await until(async () => {
      status = await statusOf(id);
      endedAt = performance.now();
      return status !== "IN_QUEUE" && status !== "IN_PROGRESS";
    }, "job end");
    const s = (ms: number) => ((ms - crash.at) / 1000).toFixed(1);
    rows.push(
      `| ${crash.restart} | ${crash.restartInMs} | ${s(at("gpu-worker starting"))} | ${s(at("model ready"))} | ${s(endedAt)} (${status}) | ${healthOk}/${healthOk + healthBad} |`,
    );
    await sleep(1000);
  }
  print([
    `Model: generated tiny llama (tests/support/models.ts), LLAMA_THREADS=1, ${runs} crashes in a row; seconds from the launcher's crash line.`,
    "",
    "| restart | wait (ms) | new gpu-worker starts (s) | model ready (s) | job sent at the crash ends (s) | /health 200 |",
    "|---|---|---|---|---|---|",
    ...rows,
  ]);
} finally {
  const exited = new Promise((resolve) => launcher.once("exit", resolve));
  launcher.kill("SIGTERM");
  await exited;
  await deleteKeysWithPrefix(redisUrl, prefix);
  await rm(dataDir, { recursive: true, force: true });
}
