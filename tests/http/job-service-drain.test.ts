/**
 * A drain that starts while a job is still on its way to the queue (past the check for a closed
 * service, awaiting Redis) waits for that job like a running one and ends it, instead of leaving
 * it queued and forgotten. Real orchestrator, real Redis, no gpu-worker: the job never finishes
 * by itself, so the drain must cancel it.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import type { Redis } from "ioredis";
import { RegistryPublisher } from "../../gpu-worker/registry/registry-publisher.js";
import { Orchestrator } from "../../orchestrator/orchestrator.js";
import { FernetKey, KeyRing } from "../../shared/crypto/index.js";
import { createLogger } from "../../shared/log.js";
import { RedisNames } from "../../shared/naming.js";
import { createRedis } from "../../shared/redis/index.js";
import { testConfig } from "../support/config.js";
import { deleteKeysWithPrefix, testRedisUrl, uniquePrefix } from "../support/redis.js";

describe("job service drain", () => {
  let redisUrl: string;
  let prefix: string;
  let orchestrator: Orchestrator;
  let keyRing: KeyRing;
  let registryRedis: Redis;
  let registry: RegistryPublisher;

  before(async () => {
    redisUrl = await testRedisUrl();
    prefix = uniquePrefix("drain");
    const key = FernetKey.generate().exportKey();
    keyRing = KeyRing.parse(key);
    const config = testConfig({
      REDIS_URL: redisUrl,
      REDIS_PREFIX: prefix,
      MODELS: "tiny=/models/tiny.gguf",
      ENCRYPTION_KEY: key,
    });
    const log = createLogger("orchestrator", { level: "error" });
    registryRedis = createRedis(redisUrl, "test-registry", log);
    registry = new RegistryPublisher({
      redis: registryRedis,
      names: new RedisNames(prefix),
      workerId: "loading-gpu-worker",
      ttlMs: 30_000,
      log,
    });
    await registry.announce(["tiny"], "loading");
    orchestrator = await Orchestrator.start({ config, keyRing, redisUrl, log });
  });

  after(async () => {
    await orchestrator?.close();
    await registry?.close();
    registryRedis?.disconnect();
    await deleteKeysWithPrefix(redisUrl, prefix);
  });

  it("ends a job that was being queued when the drain began", async () => {
    const input = { encrypted_input: keyRing.encrypt(JSON.stringify({ prompt: "the dog" })) };
    // Not awaited: the job is past admission's first checks and waiting on Redis.
    const submitted = orchestrator.jobs.submit(input);
    await orchestrator.jobs.close(300);
    const record = await submitted;
    assert.equal(record.status, "CANCELLED");
    assert.equal(await orchestrator.queues.depths().then((d) => d.get("tiny")?.waiting), 0);
  });
});
