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
  /**
   * Once loaded: tokens per sequence, and the most text bytes one token stands for, which bound
   * the prompts admission lets through (see `protocol/prompt-bytes.ts`). Absent while loading,
   * where unknown, and from gpu-workers older than the bound.
   */
  contextSize: z.number().int().min(1).optional(),
  maxTokenBytes: z.number().int().min(1).optional(),
});

/** What a gpu-worker tells of a model it has loaded (see {@link registryEntrySchema}). */
export interface LoadedModelInfo {
  contextSize: number;
  maxTokenBytes: number | undefined;
}

export type RegistryEntry = z.infer<typeof registryEntrySchema>;

/**
 * Writes a gpu-worker's entries with expiries from the server's clock, and keeps each hash alive
 * for the TTL past its latest write. KEYS: the models' hashes; ARGV: ttlMs, worker id, then per
 * key its state, context size and longest token in bytes (0: unknown, left out).
 */
export const registryHeartbeatScript = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ttl = tonumber(ARGV[1])
for i, key in ipairs(KEYS) do
  local at = 3 * i
  local entry = { state = ARGV[at], expiresAt = now + ttl }
  local contextSize = tonumber(ARGV[at + 1])
  local maxTokenBytes = tonumber(ARGV[at + 2])
  if contextSize > 0 then entry.contextSize = contextSize end
  if maxTokenBytes > 0 then entry.maxTokenBytes = maxTokenBytes end
  redis.call('HSET', key, ARGV[2], cjson.encode(entry))
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
