import { ConfigError, RedisUnavailableError } from "../errors/index.js";
import type { Logger } from "../log.js";
import { sleep } from "../process/sleep.js";
import { probeRedis, redisAnswers } from "./probe-redis.js";
import { type RedisServerProcess, startRedisServer } from "./redis-server-process.js";
import { describeRedisTarget, type RedisTarget } from "./redis-target.js";

export const defaultLocalRedisUrl = "redis://127.0.0.1:6379";

export interface FoundRedis {
  /** What every connection of the process is made from. */
  target: RedisTarget;
  /** Set when a private server was started; close it on the way out. */
  server?: RedisServerProcess;
}

/**
 * The Redis to use: the configured one (`REDIS_URL`, `REDIS_SENTINELS` or `REDIS_CLUSTER_NODES`) when set; else a server on 127.0.0.1:6379 if one answers; else,
 * when `mayStart`, a private memory-only `redis-server` from PATH; else a clear error.
 */
export async function findRedis(
  configured: RedisTarget | undefined,
  log: Logger,
  options: { mayStart: boolean; localUrl?: string; connectTimeoutMs?: number },
): Promise<FoundRedis> {
  if (configured !== undefined) {
    await waitForRedis(configured, options.connectTimeoutMs ?? 5000, log);
    return { target: configured };
  }
  const localUrl = options.localUrl ?? defaultLocalRedisUrl;
  if (await redisAnswers(localUrl)) {
    log.info("REDIS_URL is unset: using the local Redis server", { url: localUrl });
    return { target: localUrl };
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
  return { target: server.url, server };
}

/**
 * Waits until the configured Redis answers, trying every second, for at most `timeoutMs`; then
 * gives up with a {@link RedisUnavailableError} that names `REDIS_URL` (its password hidden), why
 * it failed and what to check. A process that starts against a Redis that never comes up thus
 * exits instead of retrying for ever; once started, it survives outages. A Redis that answers but
 * turns the connection down for good (a wrong password, a database it does not have) ends the
 * wait at once with a {@link ConfigError}.
 */
export async function waitForRedis(
  target: RedisTarget,
  timeoutMs: number,
  log: Logger,
): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  let reported = false;
  for (;;) {
    const failure = await probeRedis(
      target,
      Math.max(100, Math.min(1000, deadline - performance.now())),
    );
    if (failure === undefined) return;
    if (failure.refused) {
      throw new ConfigError(`${describeRedisTarget(target)}: ${failure.reason}`);
    }
    const left = deadline - performance.now();
    if (left <= 0) {
      throw new RedisUnavailableError(
        `could not reach Redis at ${describeRedisTarget(target)} within ${formatSeconds(timeoutMs)}: ${failure.reason}. ` +
          "Check that Redis runs and is reachable from here, the host and port, the password, and " +
          `${typeof target === "string" ? "redis:// vs rediss://" : "REDIS_TLS"} (TLS); REDIS_CONNECT_TIMEOUT_MS sets how long to wait`,
      );
    }
    if (!reported) {
      reported = true;
      log.warn("waiting for Redis", {
        redis: describeRedisTarget(target),
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
