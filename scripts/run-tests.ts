/**
 * Runs the test tiers in order (unit, redis, model, http, e2e), each file in its own process
 * (node:test). Starts a private, memory-only redis-server for the run unless REDIS_URL is set, so
 * the suite never touches a Redis it does not own. `node dist/scripts/run-tests.js [tier ...]`.
 *
 * Each tier prints node:test's spec report and also writes a TAP report to a temporary file, whose
 * closing counts are summed: the last line of the run is `N passed, N failed, N skipped` for every
 * tier together (CI reads it). The exit code is non-zero when any test or tier failed.
 */
import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { redisForRun } from "./redis-for-run.js";
import { addCounts, formatTotals, readTapCounts, type TestCounts } from "./test-counts.js";

const tiers = ["unit", "redis", "model", "http", "e2e"] as const;
/** Files run at once per tier: model-loading tiers one at a time on small machines. */
const concurrency: Record<(typeof tiers)[number], number> = {
  unit: 2,
  redis: 2,
  model: 1,
  http: 1,
  e2e: 1,
};

const testsDir = fileURLToPath(new URL("../tests/", import.meta.url));
const asked = process.argv.slice(2);
const unknown = asked.filter((tier) => !(tiers as readonly string[]).includes(tier));
if (unknown.length > 0) {
  process.stderr.write(`unknown test tier(s): ${unknown.join(", ")}; tiers: ${tiers.join(", ")}\n`);
  process.exit(2);
}
const selected = tiers.filter((tier) => asked.length === 0 || asked.includes(tier));

const redis = await redisForRun();
if (redis.private) process.stdout.write(`tests: private redis-server at ${redis.url}\n`);
const env = { ...process.env, REDIS_URL: redis.url };

const reportDir = mkdtempSync(path.join(os.tmpdir(), "llmpool-tests-"));
let totals: TestCounts = { passed: 0, failed: 0, skipped: 0 };
let failed = false;
for (const tier of selected) {
  const dir = path.join(testsDir, tier);
  const files = existsSync(dir)
    ? readdirSync(dir)
        .filter((name) => name.endsWith(".test.js"))
        .sort()
        .map((name) => path.join(dir, name))
    : [];
  if (files.length === 0) continue;
  process.stdout.write(`\n=== ${tier} tests (${files.length} files) ===\n`);
  const tapFile = path.join(reportDir, `${tier}.tap`);
  const code = await new Promise<number>((resolve) => {
    const child = spawn(
      process.execPath,
      [
        "--enable-source-maps",
        "--test",
        "--test-reporter=spec",
        "--test-reporter-destination=stdout",
        "--test-reporter=tap",
        `--test-reporter-destination=${tapFile}`,
        `--test-concurrency=${concurrency[tier]}`,
        "--test-timeout=180000",
        ...files,
      ],
      { env, stdio: "inherit" },
    );
    child.on("exit", (exitCode) => resolve(exitCode ?? 1));
  });
  const counts = readTapCounts(existsSync(tapFile) ? readFileSync(tapFile, "utf8") : "");
  // A tier whose process failed without a failed test (a crash, a file that does not load)
  // still counts as one failure, so the totals never read "0 failed" for a failed run.
  if (code !== 0 && counts.failed === 0) counts.failed = 1;
  totals = addCounts(totals, counts);
  process.stdout.write(`=== ${tier} tests: ${formatTotals(counts)} ===\n`);
  if (code !== 0) {
    failed = true;
    process.stdout.write(`=== ${tier} tests FAILED ===\n`);
  }
}
await redis.close();
rmSync(reportDir, { recursive: true, force: true });
if (failed && totals.failed === 0) totals.failed = 1;
process.stdout.write(`\n${formatTotals(totals)}\n`);
process.exit(failed || totals.failed > 0 ? 1 : 0);
