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
import { after, before, describe, it } from "node:test";
import type { Redis } from "ioredis";
import { RegistryPublisher } from "../../gpu-worker/registry/registry-publisher.js";
import type { JobRecord } from "../../orchestrator/jobs/job-record.js";
import { Orchestrator } from "../../orchestrator/orchestrator.js";
import { FernetKey, KeyRing } from "../../shared/crypto/index.js";
import { createLogger } from "../../shared/log.js";
import { RedisNames } from "../../shared/naming.js";
import { closeRedis, createRedis } from "../../shared/redis/index.js";
import { testConfig } from "../support/config.js";
import {
  deleteKeysWithPrefix,
  keysWithPrefix,
  testRedisUrl,
  uniquePrefix,
} from "../support/redis.js";

const limit = 50;
const requests = 300;

describe("the queue limit with two orchestrators on one Redis", () => {
  const log = createLogger("test", { level: "error" });
  let redisUrl: string;
  let prefix: string;
  let keyRing: KeyRing;
  let redis: Redis;
  let publisher: RegistryPublisher;
  const orchestrators: Orchestrator[] = [];

  before(async () => {
    redisUrl = await testRedisUrl();
    prefix = uniquePrefix("limit");
    const key = FernetKey.generate().exportKey();
    keyRing = KeyRing.parse(key);
    const config = testConfig({
      REDIS_URL: redisUrl,
      REDIS_PREFIX: prefix,
      MODELS: "tiny=/models/tiny.gguf",
      ENCRYPTION_KEY: key,
      MAX_QUEUED_JOBS: String(limit),
      SHUTDOWN_TIMEOUT_MS: "0",
    });
    for (let i = 0; i < 2; i += 1) {
      orchestrators.push(await Orchestrator.start({ config, keyRing, redisUrl, log }));
    }
    redis = createRedis(redisUrl, "test-limit", log);
    publisher = new RegistryPublisher({
      redis,
      names: new RedisNames(prefix),
      workerId: "worker-loading",
      ttlMs: 30_000,
      log,
    });
    await publisher.announce(["tiny"], "loading");
  });

  after(async () => {
    await Promise.all(orchestrators.map((orchestrator) => orchestrator.close()));
    await publisher?.close();
    if (redis) await closeRedis(redis);
    await deleteKeysWithPrefix(redisUrl, prefix);
  });

  it(`accepts exactly ${limit} of ${requests} requests sent at once to both`, async () => {
    const input = () => ({
      encrypted_input: keyRing.encrypt(JSON.stringify({ model: "tiny", prompt: "x" })),
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
    const reservations = new RedisNames(prefix).queueReservations("tiny");
    for (
      let i = 0;
      i < 100 && (await keysWithPrefix(redisUrl, prefix)).includes(reservations);
      i++
    ) {
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    assert.ok(!(await keysWithPrefix(redisUrl, prefix)).includes(reservations));
  });
});
