import type { Redis } from "ioredis";
import { messageOf } from "../../shared/errors/index.js";
import type { Logger } from "../../shared/log.js";
import type { RedisNames } from "../../shared/naming.js";
import { parseOwner } from "../../shared/registry/job-owner.js";
import { liveWorkerIds, redisTimeMs } from "../../shared/registry/model-registry.js";

/** What the watch needs of a job (a {@link import("./tracked-job.js").TrackedJob}). */
export interface WatchedJob {
  readonly id: string;
  readonly model: string;
  /** Its current attempt: only a gpu-worker that claimed this attempt runs it. */
  readonly attempt: number;
  /** Whether it can be found lost now. */
  readonly watchable: boolean;
  /** Its gpu-worker is gone. */
  lost(why: Record<string, unknown>): Promise<void>;
}

export interface WorkerWatchOptions {
  redis: Redis;
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
 * check, and tells the job (which runs again or fails, see `TrackedJob.lost`). Each tick is one
 * Redis round trip for all watched jobs: Redis time, the registry hash of each of their models, and
 * their owner keys (`shared/registry/job-owner.ts`). It keeps nothing per job.
 */
export class WorkerWatch {
  readonly #options: WorkerWatchOptions;
  readonly #tickMs: number;
  #timer: NodeJS.Timeout | undefined;
  #ticking = false;
  #closed = false;

  constructor(options: WorkerWatchOptions) {
    this.#options = options;
    this.#tickMs = Math.min(1000, Math.max(100, Math.floor(options.registryTtlMs / 3)));
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
    const pipeline = redis.pipeline().time();
    for (const model of models) pipeline.hgetall(names.modelRegistry(model));
    pipeline.mget(...jobs.map((job) => names.ownerKey(job.id)));
    const results = (await pipeline.exec()) ?? [];
    for (const [error] of results) if (error) throw error;
    const now = redisTimeMs(results[0]?.[1] as string[]);
    const live = new Map(
      models.map((model, index) => [
        model,
        liveWorkerIds((results[index + 1]?.[1] ?? {}) as Record<string, string>, now),
      ]),
    );
    const owners = (results[models.length + 1]?.[1] ?? []) as (string | null)[];
    jobs.forEach((job, index) => {
      const owner = parseOwner(owners[index]);
      // Not taken yet, or taken by an attempt other than the current one.
      if (owner === undefined || owner.workerId === "" || owner.attempt !== job.attempt) return;
      if (!job.watchable || live.get(job.model)?.has(owner.workerId)) return;
      void job.lost({ gpuWorker: owner.workerId });
    });
  }

  /** Stops watching (idempotent). */
  close(): void {
    this.#closed = true;
    clearInterval(this.#timer);
    this.#timer = undefined;
  }
}
