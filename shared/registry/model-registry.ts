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
 * do not count it as serving) but is alive, so its running jobs are not taken for lost. A model of
 * its catalogue that it has not loaded (or unloaded) is `cold`: it can load it when a job asks.
 */
export type ModelState = "cold" | "loading" | "ready" | "draining";

export const registryEntrySchema = z.object({
  state: z.enum(["cold", "loading", "ready", "draining"]),
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

/** What a gpu-worker holds against its memory budget (the `gpu-workers` hash, one field each). */
export const gpuWorkerInfoSchema = z.object({
  /** `gpu` or `cpu`: where its models live. */
  device: z.string(),
  /** What all its models may use together, and what the loaded ones use (by the memory plan). */
  budgetBytes: z.number(),
  usedBytes: z.number(),
  /** Its models by state (`cold` ones it can load on demand). */
  models: z.record(z.string(), z.enum(["cold", "loading", "ready", "draining"])),
  /** Redis server time (ms) after which the entry is dead. */
  expiresAt: z.number(),
});

export type GpuWorkerInfo = z.infer<typeof gpuWorkerInfoSchema>;

/**
 * Writes a gpu-worker's entries with expiries from the server's clock, and keeps each hash alive
 * for the TTL past its latest write. KEYS: the `gpu-workers` hash, then the models' hashes; ARGV:
 * ttlMs, worker id, its budget info as JSON (without `expiresAt`; empty: none), then per model
 * key its state, context size and longest token in bytes (0: unknown, left out).
 */
export const registryHeartbeatScript = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ttl = tonumber(ARGV[1])
if ARGV[3] ~= '' then
  local info = cjson.decode(ARGV[3])
  info.expiresAt = now + ttl
  redis.call('HSET', KEYS[1], ARGV[2], cjson.encode(info))
  redis.call('PEXPIRE', KEYS[1], ttl * 2)
end
for i = 2, #KEYS do
  local at = 3 * i - 2
  local entry = { state = ARGV[at], expiresAt = now + ttl }
  local contextSize = tonumber(ARGV[at + 1])
  local maxTokenBytes = tonumber(ARGV[at + 2])
  if contextSize > 0 then entry.contextSize = contextSize end
  if maxTokenBytes > 0 then entry.maxTokenBytes = maxTokenBytes end
  redis.call('HSET', KEYS[i], ARGV[2], cjson.encode(entry))
  redis.call('PEXPIRE', KEYS[i], ttl * 2)
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

/** Parses a `gpu-workers` value; `undefined` for anything that is not one. */
export function parseGpuWorkerInfo(value: string): GpuWorkerInfo | undefined {
  try {
    const parsed = gpuWorkerInfoSchema.safeParse(JSON.parse(value));
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
