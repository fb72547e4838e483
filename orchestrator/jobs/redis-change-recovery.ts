import { messageOf } from "../../shared/errors/index.js";
import type { Logger } from "../../shared/log.js";
import type { RedisNames } from "../../shared/naming.js";
import { onTopologyChange, type RedisClient } from "../../shared/redis/index.js";
import { failLostJobs } from "./lost-jobs.js";
import type { ModelQueues } from "./model-queues.js";
import { type RecentEnd, RecentEnds } from "./recent-ends.js";
import type { TrackedJob } from "./tracked-job.js";

export interface RedisChangeRecoveryOptions {
  redis: RedisClient;
  names: RedisNames;
  queues: ModelQueues;
  log: Logger;
  /** The jobs tracked now. */
  jobs: () => Iterable<TrackedJob>;
  /**
   * Whether it also fails `JOB_LOST` the tracked jobs whose writes Redis lost (a RunPod worker:
   * the local API's durable jobs do it on their heartbeat, with their records).
   */
  failLost: boolean;
  /** How long after a change it looks once more, the new primaries settled (ms). */
  settleMs?: number;
}

/**
 * What the job service does when the Redis behind the pool may have changed under it with fewer
 * or older writes than it took (`onTopologyChange`: a failover, a restart): now, and once more
 * when the new primaries settled, it applies the recent ends again (`recent-ends.ts`) and, for a
 * RunPod worker, fails `JOB_LOST` the jobs Redis lost (`lost-jobs.ts`).
 */
export class RedisChangeRecovery {
  readonly #options: RedisChangeRecoveryOptions;
  readonly #ends: RecentEnds;
  #stop: (() => void) | undefined;

  constructor(options: RedisChangeRecoveryOptions) {
    this.#options = options;
    this.#ends = new RecentEnds(options);
  }

  /** A job ended here (its names only are kept). */
  ended(end: RecentEnd): void {
    this.#ends.add(end);
  }

  /** A job id is queued again (RunPod delivered it again): an end of its earlier run is not applied. */
  rerun(jobId: string): void {
    this.#ends.forget(jobId);
  }

  start(): void {
    this.#stop ??= onTopologyChange(
      this.#options.redis,
      (when) => void this.#recover(when),
      this.#options.settleMs ?? 3000,
    );
  }

  /** Never throws. */
  async #recover(when: string): Promise<void> {
    const { redis, names, queues, log, jobs, failLost } = this.#options;
    await this.#ends.reapply(when);
    if (!failLost) return;
    try {
      const lost = await failLostJobs(jobs(), { redis, names, queues });
      if (lost > 0) log.warn("jobs whose writes Redis lost failed JOB_LOST", { lost, when });
    } catch (error) {
      log.warn("could not check the jobs after a Redis change", { when, error: messageOf(error) });
    }
  }

  close(): void {
    this.#stop?.();
    this.#stop = undefined;
  }
}
