import { isCluster, type RedisClient } from "./create-redis.js";

/** One command: its name and arguments, as for `redis.pipeline([...])`. */
export type RedisCommand = [name: string, ...args: (string | number)[]];

/**
 * Sends commands whose keys may lie in different cluster slots, and resolves each one's
 * `[error, reply]` in order, as a pipeline does. One server: one pipeline (one round trip). A
 * cluster: each command on its own, all at once (a cluster pipeline must stay on one node).
 */
export async function sendEach(
  redis: RedisClient,
  commands: readonly RedisCommand[],
): Promise<[Error | null, unknown][]> {
  if (commands.length === 0) return [];
  if (!redis.isCluster)
    return ((await redis.pipeline([...commands]).exec()) ?? []) as [Error | null, unknown][];
  return Promise.all(
    commands.map(([name, ...args]) => {
      const method = (redis as unknown as Record<string, (...a: unknown[]) => Promise<unknown>>)[
        name
      ];
      if (method === undefined)
        return [new Error(`unknown command ${name}`), null] as [Error, null];
      return method.apply(redis, args).then(
        (reply): [null, unknown] => [null, reply],
        (error: Error): [Error, null] => [error, null],
      );
    }),
  );
}

/** `GET` of many keys in any slots (one server: one `MGET`). */
export async function getEach(
  redis: RedisClient,
  keys: readonly string[],
): Promise<(string | null)[]> {
  if (keys.length === 0) return [];
  if (!redis.isCluster) return redis.mget(...keys);
  return Promise.all(keys.map((key) => redis.get(key)));
}

/**
 * Batches of the keys that match `pattern`, by SCAN: on a cluster, on every primary in turn (each
 * holds its own slots' keys).
 */
export async function* scanKeys(
  redis: RedisClient,
  pattern: string,
  count = 500,
): AsyncGenerator<string[]> {
  if (isCluster(redis) && redis.status !== "ready") {
    // A new cluster client knows its nodes only once it has read the slots.
    await new Promise((resolve) => redis.once("ready", resolve));
  }
  const nodes = isCluster(redis) ? redis.nodes("master") : [redis];
  for (const node of nodes) {
    let cursor = "0";
    do {
      const [next, keys] = await node.scan(cursor, "MATCH", pattern, "COUNT", count);
      cursor = next;
      if (keys.length > 0) yield keys;
    } while (cursor !== "0");
  }
}
