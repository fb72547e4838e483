/**
 * Several models from one gpu-worker: three generated models (different seeds and shapes) served
 * at once, each request answered by its own model (the text node-llama-cpp generates directly
 * for that model) through its own queue; and continuous batching on one of them: 8 concurrent
 * requests on a model with 4 sequences all complete, with at most 4 generating at once — counted
 * by the model thread itself (context sequences in use) and by sampling the queue's active jobs.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { Queue } from "bullmq";
import { Redis } from "ioredis";
import { tinyModelPath } from "../support/models.js";
import { queueKey } from "../support/redis.js";
import { referenceTexts } from "../support/reference.js";
import { TestStack, textOf } from "../support/stack.js";
import { waitFor } from "../support/wait-for.js";

const models = [
  { name: "alpha", options: { seed: 101 }, settings: "?sequences=4" },
  { name: "beta", options: { seed: 202, headCount: 8 }, settings: "?sequences=1&context=512" },
  { name: "gamma", options: { seed: 303, blockCount: 2 }, settings: "?sequences=1&context=512" },
] as const;
const prompt = "Once upon a time the";

describe("several models in one gpu-worker", () => {
  let stack: TestStack;
  const paths = new Map<string, string>();
  const reference = new Map<string, string>();

  before(async () => {
    for (const model of models) {
      const file = await tinyModelPath(model.options);
      paths.set(model.name, file);
      const [text] = await referenceTexts(file, [{ prompt, maxTokens: 24 }]);
      reference.set(model.name, text ?? "");
    }
    stack = await TestStack.start({
      models: models
        .map((model) => `${model.name}=${paths.get(model.name)}${model.settings}`)
        .join(","),
      env: { CONTEXT_SIZE: "1024" },
      gpuWorkerEnv: { LOG_LEVEL: "debug" },
      label: "models",
    });
  });

  after(async () => {
    await stack?.stop();
  });

  it("the three models differ, so the test can tell them apart", () => {
    assert.equal(new Set(reference.values()).size, 3);
  });

  it("logs the memory plan with a line per model before loading", () => {
    const planAt = stack.logs.findIndex((line) => line.includes("memory plan"));
    const loadAt = stack.logs.findIndex((line) => line.includes("loading model"));
    assert.ok(planAt >= 0 && loadAt > planAt, "the plan comes before any model loads");
    for (const model of models) {
      assert.ok(
        stack.logs.some((line) => line.includes(`  ${model.name} `) && line.includes("MiB")),
        `the plan has a line for ${model.name}`,
      );
    }
    assert.ok(stack.logs.some((line) => /budget\s+[\d.]+ [MG]iB/.test(line)));
  });

  it("answers each request with its own model, through that model's queue", async () => {
    const redis = new Redis(stack.redisUrl);
    try {
      for (const model of models) {
        const view = await stack.runsync({
          model: model.name,
          prompt,
          sampling_params: { max_tokens: 24, temperature: 0 },
        });
        assert.equal(view.status, "COMPLETED", `${model.name}: ${view.error ?? ""}`);
        assert.equal(textOf(view.output ?? []), reference.get(model.name));
        const completedOn = async (queueName: string) => {
          const events = await redis.xrange(queueKey(stack.names, queueName, "events"), "-", "+");
          return events.some(
            ([, fields]) => fields.includes("completed") && fields.includes(view.id),
          );
        };
        // The reply reaches the caller before BullMQ records the job as completed: wait for that.
        await waitFor(() => completedOn(model.name), 10_000, "BullMQ to record it completed", 20);
        for (const queueOf of models) {
          const completedHere = await completedOn(queueOf.name);
          assert.equal(
            completedHere,
            queueOf.name === model.name,
            `job for ${model.name} completed on queue ${queueOf.name}: ${completedHere}`,
          );
        }
      }
    } finally {
      redis.disconnect();
    }
  });

  it("runs 8 concurrent requests on 4 sequences: all complete, at most 4 at once", async (t) => {
    const queue = new Queue(stack.names.modelQueue("alpha"), {
      connection: {
        host: new URL(stack.redisUrl).hostname,
        port: Number(new URL(stack.redisUrl).port),
      },
      prefix: stack.names.bullPrefix,
    });
    let sampling = true;
    let peakActive = 0;
    const sampler = (async () => {
      while (sampling) {
        peakActive = Math.max(peakActive, await queue.getActiveCount());
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
    })();
    try {
      const views = await Promise.all(
        Array.from({ length: 8 }, (_, index) =>
          stack.runsync({
            model: "alpha",
            prompt: `${prompt} ${index}`,
            sampling_params: { max_tokens: 300, temperature: 0 },
          }),
        ),
      );
      sampling = false;
      await sampler;
      for (const view of views) {
        assert.equal(view.status, "COMPLETED", view.error);
        assert.ok(textOf(view.output ?? []).length > 0);
      }
      // What the model thread reported when each job took a context sequence.
      const ids = new Set(views.map((view) => view.id));
      const inUse = stack.logs
        .filter((line) => line.includes("job generating"))
        .map((line) => ({
          jobId: /jobId=(\S+)/.exec(line)?.[1] ?? "",
          sequencesInUse: Number(/sequencesInUse=(\d+)/.exec(line)?.[1]),
        }))
        .filter((entry) => ids.has(entry.jobId));
      assert.equal(inUse.length, 8, "each job reported taking a sequence");
      const peakInThread = Math.max(...inUse.map((entry) => entry.sequencesInUse));
      assert.ok(peakInThread <= 4, `at most 4 sequences in use (saw ${peakInThread})`);
      assert.ok(peakInThread >= 2, `jobs shared the model at once (saw ${peakInThread})`);
      assert.ok(peakActive <= 4, `at most 4 active jobs on the queue (saw ${peakActive})`);
      t.diagnostic(`peak sequences in use ${peakInThread}, peak active jobs ${peakActive}`);
    } finally {
      sampling = false;
      await sampler;
      await queue.close();
    }
  });
});
