import type { Logger } from "../../shared/log.js";
import type { RedisNames } from "../../shared/naming.js";
import type { RedisClient } from "../../shared/redis/index.js";
import type { ModelQueues } from "../jobs/model-queues.js";

/**
 * Checks a model's depth against its limit and reserves a place, in one step on the server, so
 * that requests admitted at the same instant (by one orchestrator or several on one Redis) never
 * take the queue past its limit. Depth = waiting jobs (BullMQ's `wait` and `paused` lists and
 * `prioritized` set) + live reservations of jobs not on the queue yet. A reservation lives until
 * its job is on the queue (released just after; until then its queue entry counts, not it), or
 * `ttlMs` (Redis time) for an orchestrator that died in between.
 * KEYS: wait, paused, prioritized, reservations. ARGV: limit, job id, ttlMs, the prefix of the
 * queue's job keys (its jobs' hashes are in the queue's slot).
 * Returns `{1, depth with this job}` or `{0, depth}` (refused).
 */
const reserveScript = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ttl = tonumber(ARGV[3])
redis.call('ZREMRANGEBYSCORE', KEYS[4], '-inf', now)
local depth = redis.call('LLEN', KEYS[1]) + redis.call('LLEN', KEYS[2])
  + redis.call('ZCARD', KEYS[3])
for _, reserved in ipairs(redis.call('ZRANGE', KEYS[4], 0, -1)) do
  if redis.call('EXISTS', ARGV[4] .. reserved) == 0 then depth = depth + 1 end
end
if depth >= tonumber(ARGV[1]) then
  return {0, depth}
end
redis.call('ZADD', KEYS[4], now + ttl, ARGV[2])
redis.call('PEXPIRE', KEYS[4], ttl * 2)
return {1, depth + 1}
`;

/** How long a reservation outlives an orchestrator that died before queueing its job. */
const reservationTtlMs = 60_000;

export interface Reservation {
  /** Whether a place was reserved (else the queue was full). */
  reserved: boolean;
  /** Waiting jobs and reservations, this one included when reserved. */
  depth: number;
}

interface ReserveCommand {
  reserveQueueSlot(...args: (string | number)[]): Promise<[number, number]>;
}

/** Admission's side of the queue limit: reserve a place, then release it once the job is queued. */
export class QueueReservations {
  readonly #redis: RedisClient;
  readonly #names: RedisNames;
  readonly #queues: ModelQueues;
  readonly #log: Logger;

  constructor(options: {
    redis: RedisClient;
    names: RedisNames;
    queues: ModelQueues;
    log: Logger;
  }) {
    this.#redis = options.redis;
    this.#names = options.names;
    this.#queues = options.queues;
    this.#log = options.log;
    // EVALSHA, with the script loaded on first use (and again after a Redis restart).
    this.#redis.defineCommand("reserveQueueSlot", { numberOfKeys: 4, lua: reserveScript });
  }

  /** Reserves a place for `jobId` on `model`'s queue if it holds fewer than `limit`. */
  async reserve(model: string, jobId: string, limit: number): Promise<Reservation> {
    const keys = this.#queues.waitingKeys(model);
    const [reserved, depth] = await (this.#redis as unknown as ReserveCommand).reserveQueueSlot(
      keys.wait,
      keys.paused,
      keys.prioritized,
      this.#names.queueReservations(model),
      limit,
      jobId,
      reservationTtlMs,
      this.#names.queueJob(model, ""),
    );
    return { reserved: reserved === 1, depth };
  }

  /** Gives the place back: the job is on the queue now (and counts there), or will not be. */
  release(model: string, jobId: string): void {
    this.#redis
      .zrem(this.#names.queueReservations(model), jobId)
      .catch((error: Error) =>
        this.#log.warn("could not release a queue reservation", { model, error: error.message }),
      );
  }
}
