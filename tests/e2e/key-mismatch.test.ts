/**
 * A deployment whose gpu-worker has another ENCRYPTION_KEY than its orchestrator cannot open the
 * sealed jobs: each job must fail at once with a message that says so, not hang until its timeout.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { FernetKey } from "../../shared/crypto/index.js";
import { tinyModelPath } from "../support/models.js";
import { TestStack } from "../support/stack.js";

describe("orchestrator and gpu-worker on different keys", () => {
  let stack: TestStack;

  before(async () => {
    stack = await TestStack.start({
      models: `tiny=${await tinyModelPath()}`,
      gpuWorkerEnv: { ENCRYPTION_KEY: FernetKey.generate().exportKey() },
      label: "keys",
    });
  });

  after(async () => {
    await stack?.stop();
  });

  it("fails the job with INTERNAL naming ENCRYPTION_KEY, quickly", async () => {
    const started = performance.now();
    const view = await stack.runsync({ prompt: "the dog", sampling_params: { max_tokens: 4 } });
    assert.equal(view.status, "FAILED");
    const error = JSON.parse(view.error ?? "{}") as { code: string; message: string };
    assert.equal(error.code, "INTERNAL");
    assert.match(error.message, /ENCRYPTION_KEY/);
    assert.ok(performance.now() - started < 10_000, "it failed at once, not at the job timeout");
  });
});
