import { Redis } from "ioredis";
import type { Logger } from "../log.js";
import { settlesWithin } from "../process/deadline.js";

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

/**
 * Closes a connection: QUIT (the server answers once the commands sent before it are done) for up
 * to `timeoutMs`, then disconnect. A connection that is not connected now is disconnected at once:
 * its QUIT would only join the commands queued for a server that is gone. Never throws.
 */
export async function closeRedis(redis: Redis, timeoutMs = 1000): Promise<void> {
  if (redis.status === "end") return;
  if (redis.status === "ready") {
    const quitting = redis.quit().catch(() => {
      // Already closing or closed.
    });
    await settlesWithin(quitting, timeoutMs);
  }
  redis.disconnect();
}
