/**
 * The closing line of `npm test` sums node:test's own counts: run node:test on a file with known
 * outcomes, with the runner's reporters, and read the counts back.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, describe, it } from "node:test";
import { addCounts, formatTotals, readTapCounts } from "../../scripts/test-counts.js";

describe("test counts", () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), "llmpool-counts-"));
  after(() => rmSync(dir, { recursive: true, force: true }));

  const run = (files: Record<string, string>) => {
    for (const [name, text] of Object.entries(files)) writeFileSync(path.join(dir, name), text);
    const tap = path.join(dir, "report.tap");
    const result = spawnSync(
      process.execPath,
      [
        "--test",
        "--test-reporter=spec",
        "--test-reporter-destination=stdout",
        "--test-reporter=tap",
        `--test-reporter-destination=${tap}`,
        ...Object.keys(files).map((name) => path.join(dir, name)),
      ],
      // Without the parent run's NODE_TEST_CONTEXT: the child is a run of its own.
      { encoding: "utf8", env: { PATH: process.env.PATH ?? "" } },
    );
    return { status: result.status, counts: readTapCounts(readFileSync(tap, "utf8")) };
  };

  it("counts passed, failed and skipped tests over several files, subtests included", () => {
    const { status, counts } = run({
      "a.test.mjs": `import { describe, it } from "node:test";
describe("group", () => {
  it("one", () => {});
  it("two", () => {});
  it("skipped", { skip: true }, () => {});
});
it("fails", () => { throw new Error("no"); });`,
      "b.test.mjs": `import { it } from "node:test";
it("three", () => {});
it("todo", { todo: true }, () => {});`,
    });
    assert.notEqual(status, 0);
    assert.deepEqual(counts, { passed: 3, failed: 1, skipped: 2 });
  });

  it("counts a file that cannot load as a failure", () => {
    const { counts } = run({ "c.test.mjs": "import './missing-module.mjs';" });
    assert.ok(counts.failed >= 1, JSON.stringify(counts));
  });

  it("sums tiers and formats the closing line", () => {
    const total = addCounts(
      { passed: 10, failed: 0, skipped: 1 },
      { passed: 5, failed: 2, skipped: 0 },
    );
    assert.equal(formatTotals(total), "15 passed, 2 failed, 1 skipped");
    assert.deepEqual(readTapCounts("no summary here"), { passed: 0, failed: 0, skipped: 0 });
  });
});
