import { ConfigError, RedisUnavailableError } from "../errors/index.js";
import type { Logger } from "../log.js";
import { sleep } from "../process/sleep.js";
import { probeRedis, redactRedisUrl, redisAnswers } from "./probe-redis.js";
import { type RedisServerProcess, startRedisServer } from "./redis-server-process.js";

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
    await waitForRedis(redisUrl, options.connectTimeoutMs ?? 5000, log);
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
 * exits instead of retrying for ever; once started, it survives outages. A Redis that answers but
 * turns the connection down for good (a wrong password, a database it does not have) ends the
 * wait at once with a {@link ConfigError}.
 */
export async function waitForRedis(url: string, timeoutMs: number, log: Logger): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  let reported = false;
  for (;;) {
    const failure = await probeRedis(
      url,
      Math.max(100, Math.min(1000, deadline - performance.now())),
    );
    if (failure === undefined) return;
    if (failure.refused) {
      throw new ConfigError(`REDIS_URL=${redactRedisUrl(url)}: ${failure.reason}`);
    }
    const left = deadline - performance.now();
    if (left <= 0) {
      throw new RedisUnavailableError(
        `could not reach Redis at REDIS_URL=${redactRedisUrl(url)} within ${formatSeconds(timeoutMs)}: ${failure.reason}. ` +
          "Check that Redis runs and is reachable from here, the host and port, the password, and " +
          "redis:// vs rediss:// (TLS); REDIS_CONNECT_TIMEOUT_MS sets how long to wait",
      );
    }
    if (!reported) {
      reported = true;
      log.warn("waiting for Redis", {
        url: redactRedisUrl(url),
        reason: failure.reason,
        timeoutMs,
      });
    }
    await sleep(Math.min(1000, left));
  }
}

function formatSeconds(ms: number): string {
  return `${Math.round(ms / 100) / 10} s`;
}
