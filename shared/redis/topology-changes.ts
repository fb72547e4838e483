import { isCluster, type RedisClient } from "./create-redis.js";

/** When a topology-change listener is called: at the change, or once the new primaries settled. */
export type TopologyChangeTime = "now" | "settled";

/**
 * Calls `listener` when the Redis behind `redis` may have changed under it, so that what it holds
 * may lack writes it had taken: on a cluster, a node lost or added (a failover; the client reads
 * the slot map every 2 s, see `create-redis.ts`); on one server or a Sentinel-managed primary, a
 * connection made again (a restart, or a promoted replica). With `settleMs`, it is called again
 * that long after the last change ("settled": the promotion done, subscriptions moved). Returns
 * the function that stops it (and its pending call).
 */
export function onTopologyChange(
  redis: RedisClient,
  listener: (when: TopologyChangeTime) => void,
  settleMs?: number,
): () => void {
  const events = isCluster(redis) ? ["-node", "+node"] : ["ready"];
  let settle: NodeJS.Timeout | undefined;
  const changed = () => {
    listener("now");
    if (settleMs === undefined) return;
    clearTimeout(settle);
    settle = setTimeout(() => listener("settled"), settleMs);
    settle.unref();
  };
  for (const event of events) redis.on(event, changed);
  return () => {
    for (const event of events) redis.off(event, changed);
    clearTimeout(settle);
  };
}
