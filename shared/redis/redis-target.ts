/**
 * Which Redis the pool uses, in one value every part builds its connections from: one server by
 * URL (the default), a primary managed by Sentinel, or a Redis Cluster. See
 * docs/redis-topologies.md.
 */

/** A host and port (`REDIS_SENTINELS`, `REDIS_CLUSTER_NODES`). */
export interface HostPort {
  host: string;
  port: number;
}

/** Credentials and TLS for Sentinel and Cluster (a URL carries its own). */
export interface RedisAuth {
  /** `REDIS_USERNAME` (an ACL user), unset for the default user. */
  username?: string | undefined;
  /** `REDIS_PASSWORD`, unset for none. */
  password?: string | undefined;
  /**
   * `REDIS_TLS`: connect with TLS, to the Sentinels too (CAs as Node's: the system store plus
   * `NODE_EXTRA_CA_CERTS`).
   */
  tls: boolean;
}

export interface SentinelTarget extends RedisAuth {
  kind: "sentinel";
  /** `REDIS_SENTINELS`. */
  sentinels: readonly HostPort[];
  /** `REDIS_SENTINEL_NAME`: the monitored primary's name. */
  name: string;
  /** `REDIS_SENTINEL_PASSWORD`: the Sentinels' own password, unset for none. */
  sentinelPassword?: string | undefined;
}

export interface ClusterTarget extends RedisAuth {
  kind: "cluster";
  /** `REDIS_CLUSTER_NODES`: seeds; the client learns the rest of the cluster from them. */
  nodes: readonly HostPort[];
}

/** A URL (one server), a Sentinel-managed primary, or a cluster. */
export type RedisTarget = string | SentinelTarget | ClusterTarget;

/** Parses `host:port,host:port` (IPv6 as `[::1]:7000`); `undefined` when malformed. */
export function parseHostPorts(text: string): HostPort[] | undefined {
  const out: HostPort[] = [];
  for (const part of text.split(",")) {
    const match = /^\s*(?:\[([0-9A-Fa-f:.]+)\]|([A-Za-z0-9_.-]+)):(\d{1,5})\s*$/.exec(part);
    const port = Number(match?.[3]);
    if (match === null || !(port >= 1 && port <= 65535)) return undefined;
    out.push({ host: match[1] ?? match[2] ?? "", port });
  }
  return out.length > 0 ? out : undefined;
}

/** The target in words for a log line or an error: never a password. */
export function describeRedisTarget(target: RedisTarget): string {
  if (typeof target === "string") {
    try {
      const parsed = new URL(target);
      if (parsed.password !== "") parsed.password = "***";
      return `REDIS_URL=${parsed.toString()}`;
    } catch {
      return "REDIS_URL=(unparsable URL)";
    }
  }
  const list = (nodes: readonly HostPort[]) =>
    nodes.map(({ host, port }) => (host.includes(":") ? `[${host}]:${port}` : `${host}:${port}`));
  return target.kind === "sentinel"
    ? `REDIS_SENTINELS=${list(target.sentinels).join(",")} REDIS_SENTINEL_NAME=${target.name}`
    : `REDIS_CLUSTER_NODES=${list(target.nodes).join(",")}`;
}

/**
 * Whether the target is a Redis Cluster: replies then travel by sharded pub/sub, a channel per
 * job (see docs/redis-topologies.md#pubsub).
 */
export function isClusterTarget(target: RedisTarget): target is ClusterTarget {
  return typeof target !== "string" && target.kind === "cluster";
}
