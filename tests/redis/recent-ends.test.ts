/**
 * The ends of recent jobs applied again when Redis comes back with less than it had: a server
 * restarted from its last snapshot (`SAVE`, then writes, then a crash) holds again the queue
 * entries that jobs' ends had removed. On reconnecting, the orchestrator's recovery (`RecentEnds`)
 * removes them and marks their owner keys ended; an entry of a job that did not end here, and a
 * finished one kept for the dashboard, are left as they are. A real redis-server, restarted.
 */
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { after, before, describe, it } from "node:test";
import type { Redis } from "ioredis";
import type { ModelQueues } from "../../orchestrator/jobs/model-queues.js";
import { RedisChangeRecovery } from "../../orchestrator/jobs/redis-change-recovery.js";
import { createLogger } from "../../shared/log.js";
import { RedisNames } from "../../shared/naming.js";
import type { JobPayload } from "../../shared/protocol/index.js";
import { closeRedis, createRedis } from "../../shared/redis/index.js";
import { endedOwner, endedOwnerTtlMs } from "../../shared/registry/job-owner.js";
import { readyModelQueues, uniquePrefix } from "../support/redis.js";
import {
  removeDir,
  type ServerProcess,
  startServer,
  topologyDir,
} from "../support/redis-processes.js";
import { waitFor } from "../support/wait-for.js";

const log = createLogger("test", { level: "error" });
const payload = { sealed: "not read here" } as unknown as JobPayload;

describe("recent job ends, applied again after Redis restarted from a snapshot", () => {
  let dir: string;
  let server: ServerProcess;
  let redis: Redis;
  let queues: ModelQueues;
  let ends: RedisChangeRecovery;
  const names = new RedisNames(uniquePrefix("recent-ends"));

  before(async () => {
    dir = await topologyDir("snapshot");
    server = await startServer(dir, () => []);
    const url = `redis://127.0.0.1:${server.port}`;
    redis = createRedis(url, "recent-ends", log) as Redis;
    queues = await readyModelQueues(redis, url, names, ["m"]);
    ends = new RedisChangeRecovery({
      redis,
      names,
      queues,
      log,
      jobs: () => [],
      failLost: false,
      settleMs: 200,
    });
    ends.start();
  });

  after(async () => {
    ends?.close();
    await queues?.close();
    if (redis !== undefined) await closeRedis(redis);
    await server?.kill();
    if (dir !== undefined) await removeDir(dir);
  });

  const entryOf = async (id: string) => {
    const [added, finished] = await redis.hmget(names.queueJob("m", id), "timestamp", "finishedOn");
    return added === null ? "none" : finished === null ? "unfinished" : "finished";
  };

  it("removes the entries of jobs that ended here, and only those", async () => {
    const [ended, endedActive, other] = [randomUUID(), randomUUID(), randomUUID()];
    for (const id of [ended, endedActive, other]) await queues.add("m", id, payload);
    // One entry taken by a gpu-worker: active, under a lock that nobody will renew.
    const queueKey = (name: string) => `${names.bullPrefix}:${names.modelQueue("m")}:${name}`;
    assert.equal(await redis.lrem(queueKey("wait"), 0, endedActive), 1);
    await redis.lpush(queueKey("active"), endedActive);
    await redis.set(names.queueJobLock("m", endedActive), "gpu-a.token", "PX", 60_000);
    assert.equal(await server.command("SAVE"), "OK");
    // The jobs end after the snapshot: their entries go, and only this process remembers.
    for (const id of [ended, endedActive]) {
      await redis.del(names.queueJobLock("m", id));
      assert.equal(await queues.removeWaiting("m", id), true);
      ends.ended({ id, model: "m", queueJobId: id });
    }
    assert.equal(await entryOf(ended), "none");
    // Redis crashes and comes back from its snapshot: the entries are back.
    await server.kill("SIGKILL");
    server = await startServer(dir, () => [], { port: server.port });
    await waitFor(
      async () =>
        (await entryOf(ended)) === "none" &&
        (await entryOf(endedActive)) === "none" &&
        (await redis.get(names.ownerKey(ended))) === endedOwner,
      10_000,
      "the entries that came back removed",
      50,
    );
    assert.equal(await redis.get(names.ownerKey(endedActive)), endedOwner);
    const ttl = await redis.pttl(names.ownerKey(ended));
    assert.ok(ttl > 0 && ttl <= endedOwnerTtlMs, `the mark expires (${ttl} ms)`);
    assert.equal(await entryOf(other), "unfinished", "a job that did not end here stays");
    assert.equal(await redis.get(names.ownerKey(other)), null);
  });
});
