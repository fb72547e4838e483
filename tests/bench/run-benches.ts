/**
 * `npm run bench [-- name ...]`: runs every benchmark in this folder (`<name>.bench.js`), each in
 * its own process, one after the other, and prints their markdown tables under a heading per
 * benchmark. Names select a subset (`npm run bench -- runpod admission`); `--name=value` options
 * go to each selected benchmark (`npm run bench -- soak --minutes=10`). Starts one private,
 * memory-only redis-server for all of them unless REDIS_URL is set. `BENCH_RUNS` sets the runs.
 */
import { spawn } from "node:child_process";
import { readdirSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { redisForRun } from "../../scripts/redis-for-run.js";

const dir = fileURLToPath(new URL(".", import.meta.url));
const suffix = ".bench.js";
const available = readdirSync(dir)
  .filter((name) => name.endsWith(suffix))
  .map((name) => name.slice(0, -suffix.length));
/** The order of docs/benchmarks.md, then any other benchmark by name. */
const order = [
  "serving",
  "hops",
  "local-stack",
  "encrypted-output",
  "embeddings",
  "admission",
  "runpod",
  "continuation",
  "hf-download",
  "memory-plan",
  "gpu-worker-start",
];
available.sort((a, b) => {
  const rank = (name: string) => (order.includes(name) ? order.indexOf(name) : order.length);
  return rank(a) - rank(b) || a.localeCompare(b);
});

const options = process.argv.slice(2).filter((arg) => arg.startsWith("--"));
const asked = process.argv.slice(2).filter((arg) => !arg.startsWith("--"));
const unknown = asked.filter((name) => !available.includes(name));
if (unknown.length > 0) {
  process.stderr.write(
    `unknown benchmark(s): ${unknown.join(", ")}; benchmarks: ${available.join(", ")}\n`,
  );
  process.exit(2);
}
const selected = available.filter((name) => asked.length === 0 || asked.includes(name));

const redis = await redisForRun();
const env = { ...process.env, REDIS_URL: redis.url };
const runs = process.env.BENCH_RUNS ?? "unset";

let failed: string[] = [];
for (const name of selected) {
  process.stdout.write(`\n## ${name}\n\n`);
  const started = performance.now();
  const code = await new Promise<number>((resolve) => {
    const child = spawn(
      process.execPath,
      ["--enable-source-maps", path.join(dir, `${name}${suffix}`), ...options],
      {
        env,
        stdio: "inherit",
      },
    );
    child.on("exit", (exitCode) => resolve(exitCode ?? 1));
  });
  const seconds = ((performance.now() - started) / 1000).toFixed(0);
  process.stdout.write(`\n(${name}: ${seconds} s, BENCH_RUNS=${runs})\n`);
  if (code !== 0) failed = [...failed, name];
}
await redis.close();
if (failed.length > 0) {
  process.stderr.write(`benchmark(s) failed: ${failed.join(", ")}\n`);
  process.exit(1);
}
