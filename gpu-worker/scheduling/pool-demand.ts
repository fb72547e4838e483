import type { RedisNames } from "../../shared/naming.js";
import { type RedisClient, sendEach } from "../../shared/redis/index.js";
import {
  parseGpuWorkerInfo,
  parseRegistryEntry,
  redisTimeMs,
} from "../../shared/registry/model-registry.js";

/** What the pool asks of one model, and who serves it, as one read found it. */
export interface ModelDemand {
  /** Jobs waiting in its queue (not yet taken by a gpu-worker). */
  waiting: number;
  /** How long its oldest waiting job has waited, in ms (0 when none waits). */
  oldestWaitMs: number;
  /** Live gpu-workers that have it loaded, or are loading it (this one included). */
  serving: number;
  /** The gpu-worker that claimed its load, if one did and the claim has not lapsed. */
  claimedBy: string | undefined;
  /** Whether that gpu-worker is alive (its registry entry for the model has not lapsed). */
  claimantAlive: boolean;
}

/**
 * One model's queue, in one step: the length of its wait list and prioritized set, and the
 * enqueue time of the oldest waiting job (BullMQ pushes new jobs at the left of the wait list and
 * takes them from the right). KEYS: its wait list and prioritized set (the script loops over
 * pairs, so several queues on one server could share a call); ARGV: the prefix of its jobs'
 * hashes (same hash tag).
 */
const demandScript = `
local out = {}
for i = 1, #KEYS, 2 do
  local waiting = redis.call('LLEN', KEYS[i]) + redis.call('ZCARD', KEYS[i + 1])
  local oldest = redis.call('LINDEX', KEYS[i], -1)
  local enqueued = 0
  if oldest then
    enqueued = tonumber(redis.call('HGET', ARGV[(i + 1) / 2] .. oldest, 'timestamp')) or 0
  end
  table.insert(out, waiting)
  table.insert(out, enqueued)
end
return out
`;

/** What a live gpu-worker has room for, by its line in the `gpu-workers` hash. */
export interface WorkerRoom {
  freeBytes: number;
  /** Its models by state. */
  models: Readonly<Record<string, string>>;
}

/**
 * Reads what the pool asks of each model of a catalogue: its waiting jobs and how long the oldest
 * has waited (BullMQ's own keys), which live gpu-workers have it loaded or loading (the registry),
 * and who claimed its load. One pipeline for all models.
 */
export async function readPoolDemand(
  redis: RedisClient,
  names: RedisNames,
  models: readonly string[],
): Promise<{ demand: Map<string, ModelDemand>; workers: Map<string, WorkerRoom> }> {
  const queueKey = (model: string, type: string) =>
    `${names.bullPrefix}:${names.modelQueue(model)}:${type}`;
  // The registry, claims and budgets share the pool's hash tag: one pipeline. Each queue lives in
  // its model's slot (on a cluster, any node): one script per model, all sent at once.
  const pipeline = redis.pipeline().time();
  for (const model of models) pipeline.hgetall(names.modelRegistry(model));
  if (models.length > 0) pipeline.mget(...models.map((model) => names.loadClaim(model)));
  pipeline.hgetall(names.gpuWorkers);
  const [results, queues] = await Promise.all([
    pipeline.exec().then((replies) => replies ?? []),
    sendEach(
      redis,
      models.map((model) => [
        "eval",
        demandScript,
        2,
        queueKey(model, "wait"),
        queueKey(model, "prioritized"),
        queueKey(model, ""),
      ]),
    ),
  ]);
  for (const [error] of [...results, ...queues]) if (error) throw error;
  const now = redisTimeMs(results[0]?.[1] as string[]);
  const counts = queues.flatMap(([, reply]) => (reply ?? []) as number[]);
  const registryAt = (index: number) => results[1 + index];
  const claims = (results[1 + models.length]?.[1] ?? []) as (string | null)[];
  const workers = new Map<string, WorkerRoom>();
  const infos = (results[results.length - 1]?.[1] ?? {}) as Record<string, string>;
  for (const [id, value] of Object.entries(infos)) {
    const info = parseGpuWorkerInfo(value);
    if (info === undefined || info.expiresAt <= now) continue;
    workers.set(id, { freeBytes: info.budgetBytes - info.usedBytes, models: info.models });
  }
  const out = new Map<string, ModelDemand>();
  models.forEach((model, index) => {
    const hash = (registryAt(index)?.[1] ?? {}) as Record<string, string>;
    let serving = 0;
    const live = new Set<string>();
    for (const [workerId, value] of Object.entries(hash)) {
      const entry = parseRegistryEntry(value);
      if (entry === undefined || entry.expiresAt <= now) continue;
      live.add(workerId);
      if (entry.state === "ready" || entry.state === "loading") serving += 1;
    }
    const claimedBy = claims[index] ?? undefined;
    const enqueuedAt = Number(counts[2 * index + 1] ?? 0);
    out.set(model, {
      waiting: Number(counts[2 * index] ?? 0),
      oldestWaitMs: enqueuedAt > 0 ? Math.max(0, now - enqueuedAt) : 0,
      serving,
      claimedBy,
      claimantAlive: claimedBy !== undefined && live.has(claimedBy),
    });
  });
  return { demand: out, workers };
}
