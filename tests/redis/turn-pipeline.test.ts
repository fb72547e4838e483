/**
 * TurnPipeline on a real Redis: the commands added during one turn of the event loop are all
 * carried out, in order, and each caller learns only about its own commands' errors.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import type { Redis } from "ioredis";
import { TurnPipeline } from "../../gpu-worker/publish/turn-pipeline.js";
import { createLogger } from "../../shared/log.js";
import { closeRedis, createRedis } from "../../shared/redis/index.js";
import { deleteKeysWithPrefix, scratchKey, testRedisUrl, uniquePrefix } from "../support/redis.js";

const log = createLogger("test", { level: "error" });

describe("TurnPipeline", () => {
  let url: string;
  let prefix: string;
  let redis: Redis;

  before(async () => {
    url = await testRedisUrl();
    prefix = uniquePrefix("turn");
    redis = createRedis(url, `${prefix}-cmd`, log);
  });

  after(async () => {
    await closeRedis(redis);
    await deleteKeysWithPrefix(url, prefix);
  });

  it("sends one turn's commands as one pipeline, in order, with errors kept apart", async () => {
    const writes = new TurnPipeline(redis);
    const list = scratchKey(prefix, "list");
    const text = scratchKey(prefix, "text");
    await redis.set(text, "not a list");
    const results = await Promise.all([
      writes.add((p) => p.rpush(list, "a").rpush(list, "b")),
      writes.add((p) => p.rpush(text, "x")),
      writes.add((p) => p.rpush(list, "c")),
    ]);
    assert.equal(results[0], undefined);
    assert.match(String(results[1]?.message), /WRONGTYPE/);
    assert.equal(results[2], undefined);
    assert.deepEqual(await redis.lrange(list, 0, -1), ["a", "b", "c"]);
  });

  it("starts a new pipeline in the next turn", async () => {
    const writes = new TurnPipeline(redis);
    const counter = scratchKey(prefix, "counter");
    const first = writes.add((p) => p.incr(counter));
    await first;
    const second = writes.add((p) => p.incr(counter));
    assert.equal(await second, undefined);
    assert.equal(await redis.get(counter), "2");
  });
});
