/**
 * A drain that starts while a job is still on its way to the queue (past the check for a closed
 * service, awaiting Redis) waits for that job like a running one and ends it, instead of leaving
 * it queued and forgotten. Real orchestrator, real Redis, no gpu-worker: the job never finishes
 * by itself, so the drain must cancel it.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { createLogger } from "../../shared/log.js";
import { InProcessOrchestrator } from "../support/in-process-orchestrator.js";

describe("job service drain", () => {
  let stack: InProcessOrchestrator;

  before(async () => {
    stack = await InProcessOrchestrator.start({
      label: "drain",
      env: { MODELS: "tiny=/models/tiny.gguf" },
      announce: { models: ["tiny"], state: "loading" },
      log: createLogger("orchestrator", { level: "error" }),
    });
  });

  after(() => stack?.close());

  it("ends a job that was being queued when the drain began", async () => {
    const { orchestrator, keyRing } = stack;
    const input = { encrypted_input: keyRing.encrypt(JSON.stringify({ prompt: "the dog" })) };
    // Not awaited: the job is past admission's first checks and waiting on Redis.
    const submitted = orchestrator.jobs.submit(input);
    await orchestrator.jobs.close(300);
    const record = await submitted;
    assert.equal(record.status, "CANCELLED");
    assert.equal(await orchestrator.queues.depths().then((d) => d.get("tiny")?.waiting), 0);
  });
});
