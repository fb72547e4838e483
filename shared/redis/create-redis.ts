import { Redis } from "ioredis";
import type { Logger } from "../log.js";

/**
 * A Redis connection for this project: `maxRetriesPerRequest: null` (BullMQ workers require it,
 * and a command should wait out a reconnect rather than fail), a connection name that shows in
 * `CLIENT LIST`, and an error listener so a lost connection is logged instead of thrown.
 */
export function createRedis(url: string, name: string, log: Logger): Redis {
  const redis = new Redis(url, {
    maxRetriesPerRequest: null,
    connectionName: name,
    retryStrategy: (attempt) => Math.min(50 * 2 ** attempt, 2000),
  });
  let lastReport = 0;
  redis.on("error", (error: Error) => {
    // ioredis emits an error on every failed reconnect attempt; one line per 10 s is enough.
    const now = Date.now();
    if (now - lastReport < 10_000) return;
    lastReport = now;
    log.warn("redis connection error", { connection: name, error: error.message });
  });
  return redis;
}

/** Quits a connection, falling back to disconnect when it is not connected. Never throws. */
export async function closeRedis(redis: Redis): Promise<void> {
  if (redis.status === "end") return;
  try {
    await Promise.race([redis.quit(), new Promise((resolve) => setTimeout(resolve, 1000).unref())]);
  } catch {
    // Already closing or closed.
  }
  redis.disconnect();
}
