/**
 * A gpu-worker that dies mid-job (SIGKILL: no goodbye) must not leave its caller waiting until
 * the job timeout: its registry entry lapses, the orchestrator queues the job it had streamed as a
 * continuation, which the next gpu-worker runs on from the text delivered, and later jobs run on
 * that gpu-worker too. Meanwhile its registry entry lapses, so its model is refused
 * `MODEL_UNAVAILABLE` at once until a gpu-worker serves it again.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { isFinalChunk } from "../../shared/protocol/index.js";
import { assertOneNumbering } from "../support/chunks.js";
import { tinyModelPath } from "../support/models.js";
import { type JobView, TestStack } from "../support/stack.js";
import { waitFor } from "../support/wait-for.js";

describe("a gpu-worker killed mid-job", () => {
  let stack: TestStack;

  before(async () => {
    stack = await TestStack.start({
      models: `tiny=${await tinyModelPath()}`,
      // Short locks so the lapse is found in seconds (production default: 30 s).
      env: { JOB_LOCK_MS: "1500", REGISTRY_TTL_MS: "1500" },
      label: "crash",
    });
  });

  after(async () => {
    await stack?.stop();
  });

  it("continues the job on a new gpu-worker, and serves the next there", async () => {
    const { streamed, killedAt } = await stack.killGpuWorkersAtFirstDelta();
    await waitFor(
      async () => {
        const health = (await stack.get("/health")) as { models: { state: string }[] };
        return health.models[0]?.state === "unavailable";
      },
      15_000 - (performance.now() - killedAt),
      "the dead gpu-worker's registry entry to lapse",
      100,
    );
    const refused = await stack.run({ prompt: "x" });
    assert.equal(refused.status, "FAILED");
    assert.equal(JSON.parse(refused.error ?? "{}").code, "MODEL_UNAVAILABLE");
    const started = performance.now();
    await stack.addGpuWorker();
    const { status, chunks } = await stack.explain(streamed);
    assert.equal(status, "COMPLETED");
    assertOneNumbering(chunks);
    const last = chunks.at(-1);
    assert.ok(last !== undefined && isFinalChunk(last));
    assert.equal(last.attempts, 2, "the new gpu-worker ran the job's second attempt");
    assert.ok(performance.now() - started < 30_000, "continued at once");
    const next = (await stack.runsync({
      prompt: "the sun",
      sampling_params: { max_tokens: 8, temperature: 0 },
    })) as JobView;
    assert.equal(next.status, "COMPLETED");
  });
});
