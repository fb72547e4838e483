/**
 * A prompt of megabytes is refused at admission, by its size in bytes against what the model's
 * context could hold (the bound its gpu-worker announced in the registry), with `PROMPT_TOO_LONG`:
 * it is never queued and no model thread spends time on it (before, a 7 MB prompt was queued and
 * tokenized for 3.5 s before it failed). The real stack, the generated tiny model.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { tinyModelPath } from "../support/models.js";
import { TestStack } from "../support/stack.js";

describe("prompt size at admission", () => {
  let stack: TestStack;

  before(async () => {
    stack = await TestStack.start({
      models: `tiny=${await tinyModelPath()}`,
      env: { CONTEXT_SIZE: "512", MAX_REQUEST_BYTES: String(16 * 1024 * 1024) },
      label: "prompt-size",
    });
  });

  after(async () => {
    await stack?.stop();
  });

  it("refuses a 3 MB prompt at once with PROMPT_TOO_LONG; no gpu-worker ever sees it", async () => {
    const prompt = "Once upon a time the dog ran. ".repeat(100_000);
    const view = await stack.run({ prompt, sampling_params: { max_tokens: 8 } });
    assert.equal(view.status, "FAILED");
    const error = JSON.parse(view.error ?? "{}") as { code?: string; message?: string };
    assert.equal(error.code, "PROMPT_TOO_LONG");
    assert.match(error.message ?? "", new RegExp(`is ${Buffer.byteLength(prompt)} bytes`));
    assert.ok(!(error.message ?? "").includes("Once upon"), "the message quotes the prompt");
    const gpuWorker = stack.gpuWorkers[0];
    assert.ok(gpuWorker !== undefined);
    assert.ok(
      !stack.logsOf(gpuWorker).some((line) => line.includes(view.id)),
      "the gpu-worker saw the job",
    );
    const chat = await stack.run({
      messages: [{ role: "user", content: "the dog ran. ".repeat(200_000) }],
    });
    assert.equal(JSON.parse(chat.error ?? "{}").code, "PROMPT_TOO_LONG");
  });

  it("still runs a prompt that fits", async () => {
    const view = await stack.runsync({ prompt: "the dog", sampling_params: { max_tokens: 4 } });
    assert.equal(view.status, "COMPLETED");
  });
});
