import { messageOf } from "../../shared/errors/index.js";
import type { Logger } from "../../shared/log.js";
import type { RedisNames } from "../../shared/naming.js";
import { type RedisClient, sendEach } from "../../shared/redis/index.js";
import { endedOwner, endedOwnerTtlMs } from "../../shared/registry/job-owner.js";
import type { ModelQueues } from "./model-queues.js";

/** A job's end, as it is applied again. */
export interface RecentEnd {
  id: string;
  model: string;
  /** The BullMQ id of its last attempt. */
  queueJobId: string;
}

export interface RecentEndsOptions {
  redis: RedisClient;
  names: RedisNames;
  queues: ModelQueues;
  log: Logger;
  /** How long an end is kept to be applied again (ms). */
  keepMs?: number;
  /** At most this many ends are kept (the oldest go first). */
  max?: number;
}

/**
 * The jobs that ended here lately, whose end is applied again after Redis changed under the
 * pool. A replica promoted in a failover (or a server restarted from a snapshot) may lack the last
 * writes of the primary it replaces, among them the removal of an ended job's queue entry: the
 * entry comes back, waiting (a gpu-worker would run the job again, for nobody) or active under a
 * lock nobody renews (left until BullMQ's stalled check, `JOB_LOCK_MS` and more). Replication lags
 * by milliseconds and a failover is noticed within seconds, so ends of the last minute suffice.
 * Applying an end again marks the job's owner key ended (a gpu-worker that took the entry stops:
 * its replies are refused) and removes the entry; only unfinished entries Redis holds are touched
 * (a finished one kept for the dashboard stays).
 */
export class RecentEnds {
  readonly #options: Required<RecentEndsOptions>;
  /** By job id, oldest first, with when each ended (ms, monotonic). */
  readonly #ends = new Map<string, { end: RecentEnd; at: number }>();

  constructor(options: RecentEndsOptions) {
    this.#options = { keepMs: 60_000, max: 20_000, ...options };
  }

  add(end: RecentEnd): void {
    this.#ends.delete(end.id);
    this.#ends.set(end.id, { end, at: performance.now() });
    if (this.#ends.size > this.#options.max) {
      const oldest = this.#ends.keys().next().value;
      if (oldest !== undefined) this.#ends.delete(oldest);
    }
  }

  forget(jobId: string): void {
    this.#ends.delete(jobId);
  }

  /** The ends kept now (the old ones dropped). */
  #kept(): RecentEnd[] {
    const since = performance.now() - this.#options.keepMs;
    for (const [id, { at }] of this.#ends) {
      if (at >= since) break;
      this.#ends.delete(id);
    }
    return [...this.#ends.values()].map(({ end }) => end);
  }

  /** Applies the kept ends again to the entries Redis holds of them (never throws). */
  async reapply(when: string): Promise<void> {
    const { redis, names, queues, log } = this.#options;
    try {
      const ends = this.#kept();
      if (ends.length === 0) return;
      // An entry that came back has its queue data and no `finishedOn` (the hash of a finished
      // one kept for the dashboard has both; a removed one, neither).
      const fields = await sendEach(
        redis,
        ends.map(({ model, queueJobId }) => [
          "hmget",
          names.queueJob(model, queueJobId),
          "timestamp",
          "finishedOn",
        ]),
      );
      const back = ends.filter((_, index) => {
        const [added, finished] = (fields[index]?.[1] ?? []) as (string | null)[];
        return (
          added !== null && added !== undefined && (finished === null || finished === undefined)
        );
      });
      if (back.length === 0) return;
      // The owner key first: a gpu-worker running the entry stops before the entry goes.
      await sendEach(
        redis,
        back.map((end) => ["set", names.ownerKey(end.id), endedOwner, "PX", endedOwnerTtlMs]),
      );
      await Promise.all(
        back.map(({ model, queueJobId }) => queues.removeAbandoned(model, queueJobId)),
      );
      log.warn("queue entries of ended jobs came back with a Redis change: removed", {
        jobs: back.length,
        when,
      });
    } catch (error) {
      log.warn("could not apply recent job ends again", { when, error: messageOf(error) });
    }
  }
}
