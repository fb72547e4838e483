import { RedisUnavailableError } from "../errors/index.js";
import type { Logger } from "../log.js";
import {
  probeRedis,
  type RedisServerProcess,
  redactRedisUrl,
  redisAnswers,
  startRedisServer,
} from "./redis-server-process.js";

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
  options: { mayStart: boolean; localUrl?: string; connectTimeoutMs?: number },
): Promise<FoundRedis> {
  if (redisUrl !== undefined) {
    await waitForRedis(redisUrl, options.connectTimeoutMs ?? 30_000, log);
    return { url: redisUrl };
  }
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

/**
 * Waits until the configured Redis answers, trying every second, for at most `timeoutMs`; then
 * gives up with a {@link RedisUnavailableError} that names `REDIS_URL` (its password hidden), why
 * it failed and what to check. A process that starts against a Redis that never comes up thus
 * exits instead of retrying for ever; once started, it survives outages.
 */
export async function waitForRedis(url: string, timeoutMs: number, log: Logger): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  let reported = false;
  for (;;) {
    const left = deadline - performance.now();
    const failure = await probeRedis(url, Math.max(100, Math.min(1000, left)));
    if (failure === undefined) return;
    if (performance.now() + 1000 > deadline) {
      throw new RedisUnavailableError(
        `could not reach Redis at REDIS_URL=${redactRedisUrl(url)} within ${Math.round(timeoutMs / 1000)} s: ${failure}. ` +
          "Check that Redis runs and is reachable from here, the host and port, the password, and " +
          "redis:// vs rediss:// (TLS); REDIS_CONNECT_TIMEOUT_MS sets how long to wait",
      );
    }
    if (!reported) {
      reported = true;
      log.warn("waiting for Redis", { url: redactRedisUrl(url), reason: failure });
    }
    await new Promise((resolve) => setTimeout(resolve, 1000));
  }
}
