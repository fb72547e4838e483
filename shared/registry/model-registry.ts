import { z } from "zod";

/**
 * The model registry in Redis: which gpu-worker serves which model, and in what state. One hash
 * per model (`RedisNames.modelRegistry`), one field per gpu-worker id, each value a JSON
 * {@link RegistryEntry} whose `expiresAt` is Redis server time (ms), so machines with skewed
 * clocks agree on it. A gpu-worker refreshes its entries every third of the TTL and deletes them
 * when it stops; an entry past `expiresAt` belongs to a gpu-worker that died, and readers ignore
 * (and delete) it. Only model names and random gpu-worker ids are stored.
 *
 * A gpu-worker that is shutting down marks its entries `draining`: it takes no new jobs (readers
 * do not count it as serving) but is alive, so its running jobs are not taken for lost.
 */
export type ModelState = "loading" | "ready" | "draining";

export const registryEntrySchema = z.object({
  state: z.enum(["loading", "ready", "draining"]),
  /** Redis server time (ms since the epoch) after which the entry is dead. */
  expiresAt: z.number(),
});

export type RegistryEntry = z.infer<typeof registryEntrySchema>;

/**
 * Writes a gpu-worker's entries with expiries from the server's clock, and keeps each hash alive
 * for the TTL past its latest write. KEYS: the models' hashes; ARGV: ttlMs, worker id, then one
 * state per key.
 */
export const registryHeartbeatScript = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ttl = tonumber(ARGV[1])
for i, key in ipairs(KEYS) do
  redis.call('HSET', key, ARGV[2], cjson.encode({ state = ARGV[i + 2], expiresAt = now + ttl }))
  redis.call('PEXPIRE', key, ttl * 2)
end
return now
`;

/** Redis `TIME` as milliseconds. */
export function redisTimeMs(time: [string, string] | string[]): number {
  return Number(time[0]) * 1000 + Math.floor(Number(time[1]) / 1000);
}

/** Parses a registry value; `undefined` for anything that is not an entry. */
export function parseRegistryEntry(value: string): RegistryEntry | undefined {
  try {
    const parsed = registryEntrySchema.safeParse(JSON.parse(value));
    return parsed.success ? parsed.data : undefined;
  } catch {
    return undefined;
  }
}

/** The ids of the gpu-workers whose entries in one registry hash are alive at `nowMs` (any state). */
export function liveWorkerIds(hash: Record<string, string>, nowMs: number): Set<string> {
  const live = new Set<string>();
  for (const [workerId, value] of Object.entries(hash)) {
    const entry = parseRegistryEntry(value);
    if (entry !== undefined && entry.expiresAt > nowMs) live.add(workerId);
  }
  return live;
}
