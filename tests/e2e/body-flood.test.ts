/**
 * Bad bodies cannot starve others: deep nesting is refused before anything is built, and huge
 * bodies are read two at a time (more get 503 with Retry-After before they are read). Four clients
 * posting 7.8 MiB `[[[…` bodies in a loop leave a normal request's median latency within 3× its
 * quiet value (plus a margin for a loaded CI machine); before, it rose from ~15 ms to 4.4 s.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { after, before, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { percentile } from "../bench/bench-stats.js";
import { tinyModelPath } from "../support/models.js";
import { TestStack } from "../support/stack.js";
import { waitFor } from "../support/wait-for.js";

/** What `/run` answers for an accepted job (a 1-token job may already have started or ended). */
const accepted = ["IN_QUEUE", "IN_PROGRESS", "COMPLETED"];
const floodClient = fileURLToPath(new URL("../support/flood-client.js", import.meta.url));
const floodBytes = Math.round(7.8 * 1024 * 1024);

describe("a flood of huge and deep bodies", () => {
  let stack: TestStack;

  before(async () => {
    stack = await TestStack.start({
      models: `tiny=${await tinyModelPath()}`,
      env: { MODEL_SEQUENCES: "2" },
      label: "flood",
    });
  });

  after(async () => {
    await stack?.stop();
  });

  async function normalLatencies(count: number): Promise<number[]> {
    const latencies: number[] = [];
    for (let i = 0; i < count; i += 1) {
      const start = performance.now();
      const job = await stack.run({ prompt: "the sun", sampling_params: { max_tokens: 1 } });
      latencies.push(performance.now() - start);
      assert.ok(accepted.includes(job.status), job.status);
    }
    return latencies;
  }

  it("refuses nesting deeper than 64 levels with 400, naming the rule", async () => {
    const response = await fetch(`${stack.url}/run`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: `${"[".repeat(65)}${"]".repeat(65)}`,
    });
    assert.equal(response.status, 400);
    assert.match(((await response.json()) as { error: string }).error, /deeper than 64/);
  });

  it("keeps a normal request's latency within 3× its quiet value", async () => {
    await normalLatencies(5); // warm-up
    const quiet = percentile(await normalLatencies(20), 50);
    const flooder = spawn(
      process.execPath,
      [floodClient, `${stack.url}/run`, "4", String(floodBytes)],
      { stdio: ["pipe", "pipe", "inherit"] },
    );
    let report = "";
    flooder.stdout.on("data", (data: Buffer) => {
      report += data.toString();
    });
    const flooderExited = new Promise((resolve) => flooder.once("exit", resolve));
    await waitFor(
      () => report.startsWith("flooding\n"),
      30_000,
      "every flood client's first answer",
      10,
    );
    const during = percentile(await normalLatencies(20), 50);
    flooder.stdin.end();
    await flooderExited;
    process.stdout.write(
      `# normal /run median: quiet ${quiet.toFixed(1)} ms, during the flood ${during.toFixed(1)} ms; flood answers by status: ${report.slice("flooding\n".length)}`,
    );
    const counts = JSON.parse(report.slice("flooding\n".length)) as Record<string, number>;
    assert.ok(Object.keys(counts).length > 0, "the flood was answered");
    for (const status of Object.keys(counts)) {
      assert.ok(["0", "400", "503"].includes(status), `got ${status}`);
    }
    assert.ok(
      during <= 3 * quiet + 30,
      `median ${during.toFixed(1)} ms during vs ${quiet.toFixed(1)} ms quiet`,
    );
    // Still serving.
    const job = await stack.run({ prompt: "the sun", sampling_params: { max_tokens: 1 } });
    assert.ok(accepted.includes(job.status), job.status);
  });
});
