/**
 * The queue limit holds exactly under concurrency, also with several orchestrators on one Redis:
 * two real orchestrators share a prefix, a gpu-worker's registry entry (its own publisher, no
 * model) says the model is loading so nothing drains the queue, and 300 requests arrive at once,
 * half at each. Exactly MAX_QUEUED_JOBS are accepted, the waiting count read from Redis while
 * they arrive never passes the limit, and each refusal is `QUEUE_FULL` with a Retry-After of at
 * least 1 s. (With the limit checked but not reserved, as before, all 300 were queued: each
 * request read the depth before any of them was added.)
 */
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { after, before, describe, it } from "node:test";
import { QueueReservations } from "../../orchestrator/admission/queue-reservations.js";
import type { JobRecord } from "../../orchestrator/jobs/job-record.js";
import type { Orchestrator } from "../../orchestrator/orchestrator.js";
import { createLogger } from "../../shared/log.js";
import { RedisNames } from "../../shared/naming.js";
import type { JobPayload } from "../../shared/protocol/index.js";
import { closeRedis, createRedis } from "../../shared/redis/index.js";
import { InProcessOrchestrator } from "../support/in-process-orchestrator.js";
import {
  deleteKeysWithPrefix,
  keysWithPrefix,
  readyModelQueues,
  testRedisUrl,
  uniquePrefix,
} from "../support/redis.js";
import { waitFor } from "../support/wait-for.js";

const limit = 50;
const requests = 300;

describe("the queue limit with two orchestrators on one Redis", () => {
  let stack: InProcessOrchestrator;
  const orchestrators: Orchestrator[] = [];

  before(async () => {
    stack = await InProcessOrchestrator.start({
      label: "limit",
      env: {
        MODELS: "tiny=/models/tiny.gguf",
        MAX_QUEUED_JOBS: String(limit),
        SHUTDOWN_TIMEOUT_MS: "0",
      },
      announce: { models: ["tiny"], state: "loading" },
    });
    orchestrators.push(stack.orchestrator, await stack.addOrchestrator());
  });

  after(() => stack?.close());

  it(`accepts exactly ${limit} of ${requests} requests sent at once to both`, async () => {
    const input = () => ({
      encrypted_input: stack.keyRing.encrypt(JSON.stringify({ model: "tiny", prompt: "x" })),
    });
    const inputs = Array.from({ length: requests }, input);
    const [first] = orchestrators as [Orchestrator, Orchestrator];
    // Read the depth from Redis all along, as an operator would see it.
    let flooding = true;
    let deepest = 0;
    const watching = (async () => {
      while (flooding) {
        const waiting = (await first.queues.depths()).get("tiny")?.waiting ?? 0;
        deepest = Math.max(deepest, waiting);
        await new Promise((resolve) => setTimeout(resolve, 2));
      }
    })();
    const records: JobRecord[] = await Promise.all(
      inputs.map((job, index) => (orchestrators[index % 2] as Orchestrator).jobs.submit(job)),
    );
    flooding = false;
    await watching;
    const accepted = records.filter((record) => record.status === "IN_QUEUE");
    const refused = records.filter((record) => record.status === "FAILED");
    process.stdout.write(
      `# ${accepted.length} accepted, ${refused.length} refused; deepest queue seen ${deepest}\n`,
    );
    assert.equal(accepted.length, limit);
    assert.equal(refused.length, requests - limit);
    for (const record of refused) {
      assert.equal(record.error?.code, "QUEUE_FULL");
      assert.ok((record.retryAfterSeconds ?? 0) >= 1, `Retry-After ${record.retryAfterSeconds}`);
    }
    assert.ok(deepest <= limit, `the queue held ${deepest} waiting jobs`);
    assert.equal((await first.queues.depths()).get("tiny")?.waiting, limit);
    // Each reservation was given back once its job was queued.
    const reservations = stack.names.queueReservations("tiny");
    await waitFor(
      async () => !(await keysWithPrefix(stack.redisUrl, stack.prefix)).includes(reservations),
      2000,
      "the reservations to be given back",
      20,
    );
  });
});

describe("a queued job whose reservation is not given back yet", () => {
  it("counts once: the next admission to a limit of 2 takes the second place", async () => {
    const url = await testRedisUrl();
    const prefix = uniquePrefix("reserve-once");
    const names = new RedisNames(prefix);
    const log = createLogger("test", { level: "error" });
    const redis = createRedis(url, `${prefix}-cmd`, log);
    const queues = await readyModelQueues(redis, url, names, ["tiny"]);
    try {
      const reservations = new QueueReservations({ redis, names, queues, log });
      const first = randomUUID();
      assert.deepEqual(await reservations.reserve("tiny", first, 2), { reserved: true, depth: 1 });
      // Queued, its reservation not yet released: the moment two admissions used to count it twice.
      await queues.add("tiny", first, { sealed: "x" } as unknown as JobPayload);
      assert.deepEqual(await reservations.reserve("tiny", randomUUID(), 2), {
        reserved: true,
        depth: 2,
      });
      assert.equal((await reservations.reserve("tiny", randomUUID(), 2)).reserved, false);
    } finally {
      await queues.close();
      await closeRedis(redis);
      await deleteKeysWithPrefix(url, prefix);
    }
  });
});
