import { messageOf } from "../../shared/errors/index.js";
import type { Logger } from "../../shared/log.js";
import type { RedisNames } from "../../shared/naming.js";
import { getEach, type RedisClient } from "../../shared/redis/index.js";
import { lockHolder, parseOwner } from "../../shared/registry/job-owner.js";
import { liveWorkerIds, redisTimeMs } from "../../shared/registry/model-registry.js";

/** What the watch needs of a job (a {@link import("./tracked-job.js").TrackedJob}). */
export interface WatchedJob {
  readonly id: string;
  readonly model: string;
  /** Its current attempt: only a gpu-worker that claimed this attempt runs it. */
  readonly attempt: number;
  /** The BullMQ id of its current attempt (whose lock names the gpu-worker that took it). */
  readonly queueJobId: string;
  /** Whether it can be found lost now. */
  readonly watchable: boolean;
  /** Its gpu-worker is gone (`dropEntry`: the entry it held is removed once the job goes on). */
  lost(why: Record<string, unknown>, dropEntry: boolean): Promise<void>;
}

export interface WorkerWatchOptions {
  redis: RedisClient;
  names: RedisNames;
  /** `REGISTRY_TTL_MS`: a gpu-worker is lost this long after its last heartbeat. */
  registryTtlMs: number;
  /** The jobs to watch (the job service's tracked jobs). */
  jobs: () => Iterable<WatchedJob>;
  log: Logger;
}

/**
 * Notices, within `REGISTRY_TTL_MS` and a tick, that the gpu-worker running a job is gone (its
 * registry entry lapsed: killed, paused, cut off from Redis), rather than waiting for BullMQ's lock
 * check, and tells the job (which runs again, continues or fails, see `TrackedJob.lost`). A job a
 * gpu-worker took from its queue but had not claimed yet is found the same way: the BullMQ lock's
 * token names the gpu-worker that holds it (`lockHolder`). Each tick reads, at once, for
 * all watched jobs: Redis time, the registry hash of each of their models, their owner keys
 * (`shared/registry/job-owner.ts`) and their current attempts' locks. It keeps nothing per job.
 *
 * A gpu-worker whose entry has lapsed is lost at once. One with no entry at all is lost only once
 * it has had none for `REGISTRY_TTL_MS`: after Redis restarted empty, a live gpu-worker takes jobs
 * before its next heartbeat writes its entry again (seen in a test: a job it had just claimed
 * failed `WORKER_LOST`); one that is gone for good never writes it again.
 */
export class WorkerWatch {
  readonly #options: WorkerWatchOptions;
  readonly #tickMs: number;
  /** When each gpu-worker holding a watched job was first found with no entry (Redis time). */
  readonly #missingSince = new Map<string, number>();
  #timer: NodeJS.Timeout | undefined;
  #ticking = false;
  #closed = false;

  constructor(options: WorkerWatchOptions) {
    this.#options = options;
    // A tenth of the TTL, at most 250 ms: a lost gpu-worker is found at most this long after its
    // entry lapsed (one pipeline per tick for all watched jobs, and only while jobs run).
    this.#tickMs = Math.min(250, Math.max(50, Math.floor(options.registryTtlMs / 10)));
  }

  /** Starts the ticks (idempotent). */
  start(): void {
    if (this.#closed) return;
    this.#timer ??= setInterval(() => void this.#tick(), this.#tickMs).unref();
  }

  async #tick(): Promise<void> {
    if (this.#ticking || this.#closed) return;
    this.#ticking = true;
    try {
      await this.#check();
    } catch (error) {
      this.#options.log.warn("could not check the gpu-workers of running jobs", {
        error: messageOf(error),
      });
    } finally {
      this.#ticking = false;
    }
  }

  async #check(): Promise<void> {
    const { redis, names } = this.#options;
    const jobs = [...this.#options.jobs()].filter((job) => job.watchable);
    if (jobs.length === 0) return;
    const models = [...new Set(jobs.map((job) => job.model))];
    // The registry is the pool's (one slot); each owner key is in its job's.
    const pipeline = redis.pipeline().time();
    for (const model of models) pipeline.hgetall(names.modelRegistry(model));
    const [results, owners, locks] = await Promise.all([
      pipeline.exec().then((replies) => replies ?? []),
      getEach(
        redis,
        jobs.map((job) => names.ownerKey(job.id)),
      ),
      // Each lock is in its model's queue's slot.
      getEach(
        redis,
        jobs.map((job) => names.queueJobLock(job.model, job.queueJobId)),
      ),
    ]);
    for (const [error] of results) if (error) throw error;
    const now = redisTimeMs(results[0]?.[1] as string[]);
    const hashes = new Map(
      models.map((model, index) => [
        model,
        (results[index + 1]?.[1] ?? {}) as Record<string, string>,
      ]),
    );
    const live = new Map(
      [...hashes].map(([model, hash]) => [model, liveWorkerIds(hash, now)] as const),
    );
    const missing = new Set<string>();
    jobs.forEach((job, index) => {
      const owner = parseOwner(owners[index]);
      const claimed = owner !== undefined && owner.workerId !== "" && owner.attempt === job.attempt;
      // Claimed: its owner runs it. Else the gpu-worker holding its lock took it, if any did.
      const holder = claimed ? owner.workerId : lockHolder(locks[index]);
      if (holder === undefined || !job.watchable || live.get(job.model)?.has(holder)) return;
      if (hashes.get(job.model)?.[holder] === undefined) {
        missing.add(holder);
        const since = this.#missingSince.get(holder) ?? now;
        this.#missingSince.set(holder, since);
        if (now - since < this.#options.registryTtlMs) return;
      }
      void job.lost(claimed ? { gpuWorker: holder } : { gpuWorker: holder, claimed: false }, true);
    });
    // Forgotten once it has an entry again, or holds no watched job.
    for (const workerId of this.#missingSince.keys()) {
      if (!missing.has(workerId)) this.#missingSince.delete(workerId);
    }
  }

  /** Stops watching (idempotent). */
  close(): void {
    this.#closed = true;
    clearInterval(this.#timer);
    this.#timer = undefined;
  }
}
