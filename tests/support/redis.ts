/**
 * Real Redis for tests: `REDIS_URL` when set (the test runner sets it to its private server),
 * else a private `redis-server` started for this process on a free port. Tests isolate
 * themselves by key prefix and delete their keys afterwards; nothing ever flushes a database.
 */
import { randomBytes } from "node:crypto";
import { Redis } from "ioredis";
import { ModelQueues } from "../../orchestrator/jobs/model-queues.js";
import { createLogger } from "../../shared/log.js";
import type { RedisNames } from "../../shared/naming.js";
import {
  type RedisClient,
  type RedisServerProcess,
  startRedisServer,
} from "../../shared/redis/index.js";

let server: Promise<RedisServerProcess> | undefined;

export async function testRedisUrl(): Promise<string> {
  const configured = process.env.REDIS_URL;
  if (configured !== undefined && configured !== "") return configured;
  if (server === undefined) {
    server = startRedisServer();
    const started = await server;
    process.once("exit", () => void started.close());
  }
  return (await server).url;
}

/** A prefix no other test uses (REDIS_PREFIX syntax). */
export function uniquePrefix(label: string): string {
  return `t-${label}-${randomBytes(4).toString("hex")}`;
}

/**
 * A key BullMQ keeps for one model's queue, `<bullPrefix>:<queue>:<key>`: `events` (its event
 * stream), `meta`, `failed`, a job id, or `*` (a pattern of them all).
 */
export function queueKey(names: RedisNames, model: string, key: string): string {
  return `${names.bullPrefix}:${names.modelQueue(model)}:${key}`;
}

/** A key of a test's own under its prefix, deleted with the prefix's keys: never a product key. */
export function scratchKey(prefix: string, name: string): string {
  return `${prefix}:test-${name}`;
}

/** Every key under a prefix. */
export async function keysWithPrefix(url: string, prefix: string): Promise<string[]> {
  const redis = new Redis(url, { maxRetriesPerRequest: 1 });
  try {
    const keys: string[] = [];
    let cursor = "0";
    do {
      const [next, batch] = await redis.scan(cursor, "MATCH", `${prefix}:*`, "COUNT", 1000);
      cursor = next;
      keys.push(...batch);
    } while (cursor !== "0");
    return keys;
  } finally {
    redis.disconnect();
  }
}

/** Deletes every key under a prefix. */
export async function deleteKeysWithPrefix(url: string, prefix: string): Promise<void> {
  const keys = await keysWithPrefix(url, prefix);
  if (keys.length === 0) return;
  const redis = new Redis(url, { maxRetriesPerRequest: 1 });
  try {
    for (let i = 0; i < keys.length; i += 500) await redis.del(...keys.slice(i, i + 500));
  } finally {
    redis.disconnect();
  }
}

/** The orchestrator's model queues on `url`, ready (no failure listener; nothing kept finished). */
export async function readyModelQueues(
  redis: RedisClient,
  url: string,
  names: RedisNames,
  models: string[],
): Promise<ModelQueues> {
  const log = createLogger("test", { level: "error" });
  const queues = new ModelQueues({
    models,
    connection: redis,
    redisTarget: url,
    names,
    log,
    onFailed: () => {},
  });
  await queues.ready();
  return queues;
}
