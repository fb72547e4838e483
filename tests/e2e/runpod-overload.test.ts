/**
 * Overload in RunPod worker mode, where there is no HTTP status to set: a job refused for a full
 * queue ends with the error the platform shows, `{"code": "QUEUE_FULL", "message": "... try
 * again in N s"}`, unchanged, and the jobs that were taken still complete.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { Queue } from "bullmq";
import { FakeRunpodPlatform } from "../fakes/runpod-platform.js";
import { tinyModelPath } from "../support/models.js";
import { TestStack } from "../support/stack.js";
import { waitFor } from "../support/wait-for.js";

const apiKey = "rp-fake-key-overload";

describe("RunPod worker: overload", { timeout: 300_000 }, () => {
  let platform: FakeRunpodPlatform;
  let stack: TestStack;
  let queue: Queue;

  before(async () => {
    platform = await FakeRunpodPlatform.start({ apiKey, holdMs: 300 });
    stack = await TestStack.start({
      models: `tiny=${await tinyModelPath()}`,
      runpod: { ...platform.env(), RUNPOD_ENDPOINT_ID: "fake-endpoint" },
      env: {
        MODEL_SEQUENCES: "1",
        CONTEXT_SIZE: "4096",
        MAX_QUEUED_JOBS: "1",
        MAX_CONCURRENCY: "4",
      },
      label: "rp-overload",
    });
    const redis = new URL(stack.redisUrl);
    queue = new Queue(stack.names.modelQueue("tiny"), {
      connection: { host: redis.hostname, port: Number(redis.port) },
      prefix: stack.names.bullPrefix,
    });
  });

  after(async () => {
    await queue?.close();
    await stack?.stop();
    await platform?.close();
  });

  it("posts QUEUE_FULL, saying when to try again, as the refused job's error", async () => {
    const job = (id: string, maxTokens: number) => ({
      id,
      input: {
        encrypted_input: stack.encrypt({
          prompt: "the dog",
          sampling_params: { max_tokens: maxTokens, temperature: 0 },
        }),
      },
    });
    // The only sequence busy for seconds (~1,000 tokens/s here), then one job waiting: full.
    platform.enqueue(job("hold", 4000));
    await stack.explain(
      platform.until(() => platform.streamed("hold").length > 0, 60_000, "the long job streaming"),
    );
    platform.enqueue(job("waits", 4));
    await waitFor(async () => (await queue.getWaitingCount()) === 1, 30_000, "a job waiting");
    platform.enqueue(job("refused", 4));
    const refused = await stack.explain(platform.waitForOutput("refused"));
    assert.equal(typeof refused.body.error, "string");
    const error = JSON.parse(refused.body.error as string) as { code: string; message: string };
    assert.deepEqual(Object.keys(error).sort(), ["code", "message"]);
    assert.equal(error.code, "QUEUE_FULL");
    assert.match(error.message, /limit of 1 waiting jobs; try again in \d+ s$/);
    assert.ok(platform.output("waits") === undefined, "the waiting job was not refused");
    platform.stop("hold");
    const waited = await stack.explain(platform.waitForOutput("waits"));
    assert.equal(waited.body.error, undefined);
  });
});
