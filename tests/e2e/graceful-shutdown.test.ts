/**
 * SIGTERM while a job runs: the gpu-worker finishes it, the orchestrator keeps serving its stream,
 * and both processes exit 0 once it is done, the gpu-worker having withdrawn its registry entry. (Refusing new jobs while draining is tested in the
 * http tier, where the moment of the drain is not a race with signal delivery.)
 */
import assert from "node:assert/strict";
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
    const registry = (await keysWithPrefix(stack.redisUrl, stack.prefix)).filter((key) =>
      key.includes(":registry:"),
    );
    assert.deepEqual(registry, [], "no registry entry is left behind");
  });
});
