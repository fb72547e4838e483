import { RedisUnavailableError } from "../errors/index.js";
import type { Logger } from "../log.js";
import { type RedisServerProcess, redisAnswers, startRedisServer } from "./redis-server-process.js";

export const defaultLocalRedisUrl = "redis://127.0.0.1:6379";

export interface FoundRedis {
  url: string;
  /** Set when a private server was started; close it on the way out. */
  server?: RedisServerProcess;
}

/**
 * The Redis to use: `REDIS_URL` when set; else a server on 127.0.0.1:6379 if one answers; else,
 * when `mayStart`, a private memory-only `redis-server` from PATH; else a clear error.
 */
export async function findRedis(
  redisUrl: string | undefined,
  log: Logger,
  options: { mayStart: boolean; localUrl?: string },
): Promise<FoundRedis> {
  if (redisUrl !== undefined) return { url: redisUrl };
  const localUrl = options.localUrl ?? defaultLocalRedisUrl;
  if (await redisAnswers(localUrl)) {
    log.info("REDIS_URL is unset: using the local Redis server", { url: localUrl });
    return { url: localUrl };
  }
  if (!options.mayStart) {
    throw new RedisUnavailableError(
      "REDIS_URL is unset and no Redis answers on 127.0.0.1:6379: start Redis, or set REDIS_URL " +
        "(when the parts run separately, give them all the same REDIS_URL)",
    );
  }
  const server = await startRedisServer();
  log.info(
    "REDIS_URL is unset and no Redis runs on 127.0.0.1:6379: started a private redis-server",
    {
      url: server.url,
    },
  );
  return { url: server.url, server };
}
