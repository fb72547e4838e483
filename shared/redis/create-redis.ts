import { Cluster, Redis, type RedisOptions } from "ioredis";
import type { Logger } from "../log.js";
import { settlesWithin } from "../process/deadline.js";
import type { RedisAuth, RedisTarget, SentinelTarget } from "./redis-target.js";

/** A connection to one server or a Sentinel-managed primary, or to a Redis Cluster. */
export type RedisClient = Redis | Cluster;

/** What every connection of the pool sets, whatever the topology. */
interface ConnectionSetup {
  connectionName: string;
  /** Connect on the first command, not at once (probes). */
  lazyConnect?: boolean;
  /**
   * On a cluster, take `SSUBSCRIBE` (sharded pub/sub): the client keeps a subscriber connection
   * to each primary that holds a subscribed channel's slot, and moves the subscriptions with
   * their slots. Ignored on one server and Sentinel (default false).
   */
  shardedSubscribers?: boolean;
}

/**
 * A Redis connection for this project: `maxRetriesPerRequest: null` (BullMQ workers require it,
 * and a command should wait out a reconnect rather than fail), a connection name that shows in
 * `CLIENT LIST`, and an error listener so a lost connection is logged instead of thrown. `target`:
 * a URL, a Sentinel-managed primary (the connection asks the Sentinels for the primary on every
 * reconnect, so it follows a failover), or a cluster (the client follows slot moves and
 * promotions).
 */
export function createRedis(target: string, name: string, log: Logger): Redis;
export function createRedis(
  target: RedisTarget,
  name: string,
  log: Logger,
  setup?: Omit<ConnectionSetup, "connectionName">,
): RedisClient;
export function createRedis(
  target: RedisTarget,
  name: string,
  log: Logger,
  setup: Omit<ConnectionSetup, "connectionName"> = {},
): RedisClient {
  const redis = connect(target, { ...setup, connectionName: name });
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

/** A new client for `target`, with no error listener (callers add theirs). */
export function connect(target: RedisTarget, setup: ConnectionSetup): RedisClient {
  const common = {
    maxRetriesPerRequest: null,
    connectionName: setup.connectionName,
    lazyConnect: setup.lazyConnect ?? false,
  } satisfies RedisOptions;
  const retryStrategy = (attempt: number) => Math.min(50 * 2 ** attempt, 2000);
  if (typeof target === "string") return new Redis(target, { ...common, retryStrategy });
  if (target.kind === "sentinel") {
    return new Redis({ ...common, ...sentinelOptions(target), retryStrategy });
  }
  return new Cluster([...target.nodes], {
    ...clusterRetries,
    lazyConnect: common.lazyConnect,
    clusterRetryStrategy: retryStrategy,
    shardedSubscribers: setup.shardedSubscribers ?? false,
    redisOptions: { ...authOptions(target), ...common, lazyConnect: undefined },
  });
}

function authOptions(auth: RedisAuth) {
  return {
    username: auth.username,
    password: auth.password,
    tls: auth.tls ? {} : undefined,
  };
}

function sentinelOptions(target: SentinelTarget): RedisOptions {
  return {
    ...authOptions(target),
    sentinels: target.sentinels.map(({ host, port }) => ({ host, port })),
    name: target.name,
    sentinelPassword: target.sentinelPassword,
    // ioredis takes the Sentinels' TLS apart from the primary's: `tls` with
    // `enableTLSForSentinelMode` reaches the primary, `sentinelTLS` the Sentinels.
    sentinelTLS: target.tls ? {} : undefined,
    enableTLSForSentinelMode: target.tls,
    // Hears +switch-master from the Sentinels and leaves a demoted primary at once.
    failoverDetector: true,
    // A primary demoted under a connection answers writes with READONLY: reconnect (asking the
    // Sentinels anew) and send the command again.
    reconnectOnError: (error: Error) => (error.message.startsWith("READONLY") ? 2 : false),
  };
}

/**
 * A promotion takes the cluster's node timeout and more; a command to a slot whose primary is
 * down is retried (64 × 200 ms, about 13 s) rather than failed at once. The orchestrator's own
 * deadlines answer callers `REDIS_UNAVAILABLE` meanwhile.
 */
const clusterRetries = {
  retryDelayOnFailover: 200,
  retryDelayOnClusterDown: 200,
  retryDelayOnTryAgain: 100,
  slotsRefreshTimeout: 2000,
  // Reads the slot map every 2 s, so a node that failed or left is noticed ('-node') even by a
  // client that never talked to it (a replica: commands go to primaries only). Without it a
  // client learns of a change only from a redirection or a broken connection of its own, and the
  // orchestrator's check of its jobs after a node is lost (`durable-jobs.ts`) may never run.
  slotsRefreshInterval: 2000,
  maxRedirections: 64,
};

/** Whether `redis` is a cluster client (its pipelines and scans work node by node). */
export function isCluster(redis: RedisClient): redis is Cluster {
  return redis.isCluster;
}

/**
 * Closes a connection: QUIT (the server answers once the commands sent before it are done) for up
 * to `timeoutMs`, then disconnect. A connection that is not connected now is disconnected at once:
 * its QUIT would only join the commands queued for a server that is gone. Never throws.
 */
export async function closeRedis(redis: RedisClient, timeoutMs = 1000): Promise<void> {
  if (redis.status === "end") return;
  if (redis.status === "ready") {
    const quitting = redis.quit().catch(() => {
      // Already closing or closed.
    });
    await settlesWithin(quitting, timeoutMs);
  }
  redis.disconnect();
}
