/**
 * How a local start finds Redis: REDIS_URL; else the local server if it answers; else (npm start
 * only) a private redis-server from PATH; else a clear error saying how to install Redis.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { createLogger } from "../../shared/log.js";
import { findRedis, freePort, redisAnswers } from "../../shared/redis/index.js";
import { testRedisUrl } from "../support/redis.js";

const log = createLogger("test", { level: "error" });

describe("findRedis", () => {
  it("takes REDIS_URL once it answers", async () => {
    const url = await testRedisUrl();
    const found = await findRedis(url, log, { mayStart: false, connectTimeoutMs: 5000 });
    assert.deepEqual(found, { target: url });
  });

  it("gives up on a REDIS_URL that does not answer, naming it without its password", async () => {
    const url = `redis://:hidden-pass@127.0.0.1:${await freePort()}`;
    await assert.rejects(
      findRedis(url, log, { mayStart: false, connectTimeoutMs: 1500 }),
      (error: { code?: string; message: string }) =>
        error.code === "REDIS_UNAVAILABLE" &&
        error.message.includes("REDIS_URL=redis://:***@127.0.0.1:") &&
        !error.message.includes("hidden-pass"),
    );
  });

  it("uses the local server when it answers", async () => {
    const url = await testRedisUrl();
    const found = await findRedis(undefined, log, { mayStart: true, localUrl: url });
    assert.equal(found.target as string, url);
    assert.equal(found.server, undefined, "nothing was started");
  });

  it("starts a private, answering redis-server when none answers and it may", async () => {
    const nobody = `redis://127.0.0.1:${await freePort()}`;
    const found = await findRedis(undefined, log, { mayStart: true, localUrl: nobody });
    try {
      assert.ok(found.server, "a server was started");
      assert.notEqual(found.target as string, nobody);
      assert.ok(await redisAnswers(found.target as string));
    } finally {
      await found.server?.close();
    }
    assert.equal(await redisAnswers(found.target as string, 300), false, "closing stops it");
  });

  it("says to start Redis or set REDIS_URL when it may not start one", async () => {
    const nobody = `redis://127.0.0.1:${await freePort()}`;
    await assert.rejects(
      findRedis(undefined, log, { mayStart: false, localUrl: nobody }),
      (error: { code?: string; message: string }) =>
        error.code === "REDIS_UNAVAILABLE" && /REDIS_URL/.test(error.message),
    );
  });

  it("says how to install Redis when there is no redis-server to start", async () => {
    const nobody = `redis://127.0.0.1:${await freePort()}`;
    const path = process.env.PATH;
    process.env.PATH = "/nonexistent";
    try {
      await assert.rejects(
        findRedis(undefined, log, { mayStart: true, localUrl: nobody }),
        (error: { code?: string; message: string }) =>
          error.code === "REDIS_UNAVAILABLE" && /apt-get install redis-server/.test(error.message),
      );
    } finally {
      process.env.PATH = path;
    }
  });
});
