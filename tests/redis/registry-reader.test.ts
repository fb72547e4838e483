/**
 * Admission's view of the model registry, on a real Redis with the real registry publisher: a
 * model found served is answered from the last read for a while (one read for many requests),
 * concurrent requests share one read, a model found unavailable is read anew every time (a
 * gpu-worker that starts serving it is seen at once), and any full read (`/health`, the watch of
 * gpu-workers) brings the answer up to date.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import type { Redis } from "ioredis";
import { RegistryPublisher } from "../../gpu-worker/registry/registry-publisher.js";
import { ModelRegistryReader } from "../../orchestrator/registry/model-registry-reader.js";
import { createLogger } from "../../shared/log.js";
import { RedisNames } from "../../shared/naming.js";
import { closeRedis, createRedis } from "../../shared/redis/index.js";
import { deleteKeysWithPrefix, testRedisUrl, uniquePrefix } from "../support/redis.js";

const log = createLogger("test", { level: "error" });

describe("ModelRegistryReader.servingRecently", () => {
  let url: string;
  let prefix: string;
  let names: RedisNames;
  let redis: Redis;
  let reads: Redis;
  let reader: ModelRegistryReader;
  let hgetalls = 0;

  const publisher = (workerId: string) =>
    new RegistryPublisher({ redis, names, workerId, ttlMs: 60_000, log });

  before(async () => {
    url = await testRedisUrl();
    prefix = uniquePrefix("registry-reader");
    names = new RedisNames(prefix);
    redis = createRedis(url, "registry-reader-test", log);
    // Counts the registry reads the reader sends (each read is one HGETALL per model).
    reads = createRedis(url, "registry-reader-reads", log);
    const counted = new Proxy(reads, {
      get(target, property, receiver) {
        if (property === "pipeline") {
          return () => {
            const pipeline = target.pipeline();
            const original = pipeline.hgetall.bind(pipeline);
            pipeline.hgetall = ((key: string) => {
              hgetalls += 1;
              return original(key);
            }) as typeof pipeline.hgetall;
            return pipeline;
          };
        }
        return Reflect.get(target, property, receiver);
      },
    });
    reader = new ModelRegistryReader({ redis: counted, names, log });
  });

  after(async () => {
    await deleteKeysWithPrefix(url, prefix);
    await closeRedis(redis);
    await closeRedis(reads);
  });

  it("answers a served model from one read for a while; concurrent requests share it", async () => {
    const worker = publisher("gpu-a");
    await worker.announce(["alpha"], "ready");
    const before = hgetalls;
    const answers = await Promise.all(
      Array.from({ length: 8 }, () => reader.servingRecently("alpha", 60_000)),
    );
    assert.equal(hgetalls - before, 1, "eight requests, one read");
    for (const answer of answers) assert.equal(answer.state, "ready");
    // Gone behind its back: within the interval the last read stands...
    await worker.close();
    assert.equal((await reader.servingRecently("alpha", 60_000)).state, "ready");
    assert.equal(hgetalls - before, 1);
    // ...past it, Redis is read again.
    assert.equal((await reader.servingRecently("alpha", 0)).state, "unavailable");
    assert.equal(hgetalls - before, 2);
  });

  it("reads a model found unavailable anew each time, and sees a gpu-worker at once", async () => {
    assert.equal((await reader.servingRecently("beta", 60_000)).state, "unavailable");
    const before = hgetalls;
    assert.equal((await reader.servingRecently("beta", 60_000)).state, "unavailable");
    assert.equal(hgetalls - before, 1, "not answered from the last read");
    const worker = publisher("gpu-b");
    await worker.announce(["beta"], "loading");
    assert.equal((await reader.servingRecently("beta", 60_000)).state, "loading");
    await worker.close();
  });

  it("takes the answer of any full read", async () => {
    const worker = publisher("gpu-c");
    await worker.announce(["gamma"], "ready");
    assert.equal((await reader.servingRecently("gamma", 60_000)).state, "ready");
    await worker.close();
    // `/health` reads every model: admission then knows as much.
    assert.equal((await reader.read(["gamma"])).get("gamma")?.state, "unavailable");
    const before = hgetalls;
    assert.equal((await reader.servingRecently("gamma", 60_000)).state, "unavailable");
    assert.equal(hgetalls - before, 1, "read anew, since the last read found it unavailable");
  });

  it("tells the largest prompt the ready gpu-workers fit, and nothing when one of them did not say", async () => {
    const small = publisher("gpu-small");
    const large = publisher("gpu-large");
    const silent = publisher("gpu-silent");
    await small.announce(["delta"], "ready", { contextSize: 512, maxTokenBytes: 7 });
    await large.announce(["delta"], "ready", { contextSize: 2048, maxTokenBytes: 5 });
    assert.deepEqual((await reader.serving("delta")).promptLimit, {
      bytes: 10_240,
      contextSize: 2048,
    });
    // A gpu-worker still loading does not count; one ready without a bound lifts it.
    await silent.announce(["delta"], "loading");
    assert.equal((await reader.serving("delta")).promptLimit?.bytes, 10_240);
    await silent.announce(["delta"], "ready", { contextSize: 4096, maxTokenBytes: undefined });
    assert.equal((await reader.serving("delta")).promptLimit, undefined);
    await Promise.all([small.close(), large.close(), silent.close()]);
  });
});
