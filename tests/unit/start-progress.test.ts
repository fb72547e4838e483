import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { createLogger } from "../../shared/log.js";
import { sleep } from "../../shared/process/sleep.js";
import { StartProgress } from "../../shared/process/start-progress.js";

function capture() {
  const lines: string[] = [];
  return { log: createLogger("gpu-worker", { write: (line) => lines.push(line) }), lines };
}

describe("StartProgress", () => {
  it("says nothing of a quick start", async () => {
    const { log, lines } = capture();
    const progress = new StartProgress(log, "announcing", 100);
    progress.step("planning");
    progress.end();
    await sleep(250);
    assert.deepEqual(lines, []);
  });

  it("names the step a long start waits for, every period, until it ends", async () => {
    const { log, lines } = capture();
    const progress = new StartProgress(log, "announcing", 100);
    await sleep(150);
    progress.step("planning memory");
    await sleep(230);
    progress.end();
    progress.end();
    const count = lines.length;
    await sleep(250);
    assert.equal(lines.length, count, "nothing after the end");
    assert.ok(count >= 2, lines.join("\n"));
    assert.match(
      lines[0] ?? "",
      /WARN .*still starting step=announcing stepSeconds=0 startSeconds=0/,
    );
    assert.match(lines.at(-1) ?? "", /still starting step="planning memory"/);
  });
});
