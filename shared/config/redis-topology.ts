import { ConfigError } from "../errors/index.js";
import {
  type ClusterTarget,
  parseHostPorts,
  type RedisTarget,
  type SentinelTarget,
} from "../redis/redis-target.js";
import type { Config } from "./config.js";
import { type Env, readBoolean, readRaw } from "./env-readers.js";

/**
 * The Sentinel or Cluster settings, when one of them is set: `REDIS_SENTINELS` (+
 * `REDIS_SENTINEL_NAME`, default `mymaster`) or `REDIS_CLUSTER_NODES`, each exclusive of the other
 * and of `REDIS_URL`; `REDIS_USERNAME`, `REDIS_PASSWORD`, `REDIS_TLS` and
 * `REDIS_SENTINEL_PASSWORD` apply to them (a URL carries its own).
 */
export function readRedisTopology(env: Env): SentinelTarget | ClusterTarget | undefined {
  const sentinels = parseNodes("REDIS_SENTINELS", readRaw(env, "REDIS_SENTINELS"));
  const cluster = parseNodes("REDIS_CLUSTER_NODES", readRaw(env, "REDIS_CLUSTER_NODES"));
  const url = readRaw(env, "REDIS_URL");
  const name = readRaw(env, "REDIS_SENTINEL_NAME");
  const auth = {
    username: readRaw(env, "REDIS_USERNAME"),
    password: readRaw(env, "REDIS_PASSWORD"),
    tls: readBoolean(env, "REDIS_TLS") ?? false,
  };
  const sentinelPassword = readRaw(env, "REDIS_SENTINEL_PASSWORD");
  const given = [
    url && "REDIS_URL",
    sentinels && "REDIS_SENTINELS",
    cluster && "REDIS_CLUSTER_NODES",
  ].filter(Boolean);
  if (given.length > 1) {
    throw new ConfigError(`${given.join(" and ")} exclude each other: set one of them`);
  }
  if (sentinels === undefined && (name !== undefined || sentinelPassword !== undefined)) {
    throw new ConfigError("REDIS_SENTINEL_NAME and REDIS_SENTINEL_PASSWORD need REDIS_SENTINELS");
  }
  if (sentinels === undefined && cluster === undefined) {
    const stray = [
      auth.username && "REDIS_USERNAME",
      auth.password && "REDIS_PASSWORD",
      readRaw(env, "REDIS_TLS") && "REDIS_TLS",
    ].find(Boolean);
    if (stray !== undefined) {
      throw new ConfigError(
        `${stray} applies to REDIS_SENTINELS or REDIS_CLUSTER_NODES only (REDIS_URL carries its own: redis://user:password@host:port, rediss:// for TLS)`,
      );
    }
    return undefined;
  }
  if (sentinels !== undefined) {
    if (name !== undefined && !/^[A-Za-z0-9_.-]{1,128}$/.test(name)) {
      throw new ConfigError(`REDIS_SENTINEL_NAME must be a Sentinel master name, got "${name}"`);
    }
    return { kind: "sentinel", sentinels, name: name ?? "mymaster", sentinelPassword, ...auth };
  }
  return { kind: "cluster", nodes: cluster ?? [], ...auth };
}

function parseNodes(name: string, raw: string | undefined) {
  if (raw === undefined) return undefined;
  const nodes = parseHostPorts(raw);
  if (nodes === undefined) {
    throw new ConfigError(
      `${name} must be a comma-separated list of host:port, e.g. 10.0.0.1:26379,10.0.0.2:26379, got "${raw.slice(0, 200)}"`,
    );
  }
  return nodes;
}

/** The Redis the configuration names (`undefined`: none, a local start finds or starts one). */
export function configuredRedis(config: Config): RedisTarget | undefined {
  return config.redisTopology ?? config.redisUrl;
}
