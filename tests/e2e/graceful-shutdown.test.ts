/**
 * SIGTERM while a job runs: the gpu-worker finishes it, the orchestrator keeps serving its stream,
 * and both processes exit 0 once it is done, the gpu-worker having withdrawn its registry entry;
 * each says at the start of its wait how many jobs it waits for and for how long at most, and
 * when they have ended. (Refusing new jobs while draining is tested in the http tier, where the
 * moment of the drain is not a race with signal delivery.)
 */
import assert from "node:assert/strict";
import type { ChildProcess } from "node:child_process";
import { after, before, describe, it } from "node:test";
import { isFinalChunk } from "../../shared/protocol/index.js";
import { tinyModelPath } from "../support/models.js";
import { keysWithPrefix } from "../support/redis.js";
import { TestStack } from "../support/stack.js";

describe("graceful shutdown", () => {
  let stack: TestStack;

  before(async () => {
    stack = await TestStack.start({
      models: `tiny=${await tinyModelPath()}`,
      env: { SHUTDOWN_TIMEOUT_MS: "60000" },
      label: "shutdown",
    });
  });

  after(async () => {
    await stack?.stop();
  });

  it("finishes the running job, keeps serving its stream, and exits 0", async () => {
    const job = await stack.run({
      prompt: "the dog",
      sampling_params: { max_tokens: 1500, temperature: 0 },
    });
    const { orchestrator } = stack;
    const [gpuWorker] = stack.gpuWorkers;
    assert.ok(orchestrator && gpuWorker);
    let signalled = false;
    const { status, chunks } = await stack.streamAll(job.id, (chunk) => {
      if (signalled || isFinalChunk(chunk)) return;
      signalled = true;
      stack.signal("SIGTERM");
    });
    assert.ok(signalled);
    assert.equal(status, "COMPLETED", "the running job finished despite the signal");
    const final = chunks.at(-1);
    assert.ok(final && isFinalChunk(final));
    assert.equal(final.finish_reason, "length");
    assert.equal(final.usage.completion_tokens, 1500);
    assert.deepEqual(await stack.exited(), [0, 0]);
    assert.ok(stack.logs.some((line) => line.includes("gpu-worker stopped")));
    const saidInOrder = (part: ChildProcess, lines: RegExp[]) => {
      const log = stack.logsOf(part);
      const at = lines.map((line) => log.findIndex((text) => line.test(text)));
      assert.ok(
        at.every((index, i) => index >= 0 && (i === 0 || index > (at[i - 1] ?? 0))),
        log.join("\n"),
      );
    };
    saidInOrder(orchestrator, [
      /waiting for unfinished jobs to end before stopping jobs=1 shutdownTimeoutMs=60000$/,
      /every unfinished job ended jobs=1 waitedMs=\d+$/,
      /orchestrator stopped/,
    ]);
    saidInOrder(gpuWorker, [
      /waiting for running jobs to end before stopping jobs=1 shutdownTimeoutMs=60000$/,
      /every running job ended jobs=1 waitedMs=\d+$/,
      /gpu-worker stopped/,
    ]);
    const registry = (await keysWithPrefix(stack.redisUrl, stack.prefix)).filter((key) =>
      key.includes(":registry:"),
    );
    assert.deepEqual(registry, [], "no registry entry is left behind");
  });
});
