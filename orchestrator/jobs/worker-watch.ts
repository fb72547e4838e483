import type { Redis } from "ioredis";
import { type ErrorInfo, WorkerLostError } from "../../shared/errors/index.js";
import type { Logger } from "../../shared/log.js";
import { RedisNames } from "../../shared/naming.js";
import type { JobPayload } from "../../shared/protocol/index.js";
import { parseOwner } from "../../shared/registry/job-owner.js";
import { liveWorkerIds, redisTimeMs } from "../../shared/registry/model-registry.js";
import type { ReplyRelay } from "../relay/reply-relay.js";
import type { ModelQueues } from "./model-queues.js";

/** A job runs at most this often: once, and once more if its gpu-worker was lost early. */
const maxAttempts = 2;
/** How long a fence key outlives its job's timeout (it is deleted when the job ends). */
const fenceSlackMs = 300_000;

export interface WorkerWatchOptions {
  redis: Redis;
  names: RedisNames;
  queues: ModelQueues;
  relay: ReplyRelay;
  /** `REGISTRY_TTL_MS`: a gpu-worker is lost this long after its last heartbeat. */
  registryTtlMs: number;
  /** Ends a job whose gpu-worker was lost and that cannot run again. */
  onLost: (jobId: string, error: ErrorInfo) => void;
  /** Told of each job queued again (for the metrics). */
  onRequeued?: (model: string) => void;
  log: Logger;
}

interface Watched {
  model: string;
  /** The job's timeout, for the expiry of its fence key. */
  timeoutMs: number;
  /** The job as queued, kept until its first reply arrives: what a new attempt is queued with. */
  payload: JobPayload | undefined;
  attempt: number;
  /** Being put back on its queue or failed: not looked at again. */
  handled: boolean;
}

/**
 * Notices, within `REGISTRY_TTL_MS` and a tick, that the gpu-worker running a job is gone (its
 * registry entry lapsed: killed, paused, cut off from Redis), rather than waiting for BullMQ's lock
 * check. Each tick is one Redis round trip for all watched jobs: Redis time, the registry hash of
 * each of their models, and their owner keys (`shared/registry/job-owner.ts`).
 *
 * A lost job that has sent no reply yet is queued once more (as attempt 2, under a BullMQ id of its
 * own) and runs on another gpu-worker; the relay takes only the new attempt's replies, so the
 * caller sees one numbering, 0..n. Any other lost job fails `WORKER_LOST`. Either way the owner key
 * is changed first, so the lost gpu-worker, should it come back, can write nothing more for it.
 */
export class WorkerWatch {
  readonly #options: WorkerWatchOptions;
  readonly #jobs = new Map<string, Watched>();
  /** BullMQ ids of the attempts after the first, to their job ids. */
  readonly #requeued = new Map<string, string>();
  readonly #tickMs: number;
  #timer: NodeJS.Timeout | undefined;
  #ticking = false;
  #closed = false;

  constructor(options: WorkerWatchOptions) {
    this.#options = options;
    this.#tickMs = Math.min(1000, Math.max(100, Math.floor(options.registryTtlMs / 3)));
  }
  /** Jobs it watches, and the queue ids of the attempts it queued again: 0 and 0 when idle. */
  get size(): { watched: number; requeued: number } {
    return { watched: this.#jobs.size, requeued: this.#requeued.size };
  }

  /** Watches a job from before it is queued; `payload` is what it was queued with. */
  track(jobId: string, model: string, payload: JobPayload, timeoutMs: number): void {
    if (this.#closed) return;
    this.#jobs.set(jobId, { model, timeoutMs, payload, attempt: 1, handled: false });
    this.#timer ??= setInterval(() => void this.#tick(), this.#tickMs).unref();
  }

  /**
   * Watches a job adopted from an orchestrator that is gone: its queued data is not known here, so
   * it cannot run again, but a lost gpu-worker still fails it. Its current attempt is read from its
   * owner key (the orchestrator that is gone may have queued it again), and the relay set to it.
   */
  async adopt(jobId: string, model: string, timeoutMs: number): Promise<void> {
    if (this.#closed) return;
    const { redis, names, relay } = this.#options;
    const owner = parseOwner(await redis.get(names.ownerKey(jobId)));
    const attempt = owner?.attempt ?? 1;
    if (attempt > 1) {
      relay.restart(jobId, attempt);
      this.#requeued.set(RedisNames.queueJobId(jobId, attempt), jobId);
    }
    this.#jobs.set(jobId, { model, timeoutMs, payload: undefined, attempt, handled: false });
    this.#timer ??= setInterval(() => void this.#tick(), this.#tickMs).unref();
  }

  untrack(jobId: string): void {
    const watched = this.#jobs.get(jobId);
    if (watched === undefined) return;
    this.#jobs.delete(jobId);
    if (watched.attempt > 1) this.#requeued.delete(RedisNames.queueJobId(jobId, watched.attempt));
    if (this.#jobs.size === 0) this.#stopTimer();
  }

  /** The BullMQ id of a job's current attempt. */
  queueJobId(jobId: string): string {
    return RedisNames.queueJobId(jobId, this.#jobs.get(jobId)?.attempt ?? 1);
  }

  /**
   * The job a BullMQ job id belongs to; `undefined` for an attempt that was superseded (the lost
   * gpu-worker's, which BullMQ fails later: that failure is not the job's).
   */
  jobOf(queueJobId: string): string | undefined {
    const requeued = this.#requeued.get(queueJobId);
    if (requeued !== undefined) return requeued;
    const watched = this.#jobs.get(queueJobId);
    return watched !== undefined && watched.attempt > 1 ? undefined : queueJobId;
  }

  /** The job's gpu-worker was lost (or BullMQ found it stalled): runs it again once, or fails it. */
  async lost(jobId: string, why: Record<string, unknown> = {}): Promise<void> {
    const watched = this.#jobs.get(jobId);
    if (watched === undefined || watched.handled) return;
    watched.handled = true;
    const { redis, names, queues, relay, log, onLost } = this.#options;
    const fresh = watched.payload !== undefined && !relay.delivered(jobId);
    if (!fresh || watched.attempt >= maxAttempts || watched.payload === undefined) {
      log.warn("job lost with its gpu-worker", { jobId, attempt: watched.attempt, ...why });
      onLost(jobId, new WorkerLostError().toInfo());
      return;
    }
    const attempt = watched.attempt + 1;
    const payload: JobPayload = { ...watched.payload, jobId, attempt };
    // At once, before anything is awaited: what the lost attempt still sends is dropped.
    relay.restart(jobId, attempt);
    watched.attempt = attempt;
    watched.payload = undefined;
    const queueJobId = RedisNames.queueJobId(jobId, attempt);
    this.#requeued.set(queueJobId, jobId);
    try {
      // The fence first: the lost attempt can no longer claim or write; its stored replies go.
      await redis
        .multi()
        .set(names.ownerKey(jobId), `${attempt}:`, "PX", watched.timeoutMs + fenceSlackMs)
        .del(names.deltaStream(jobId))
        .exec();
      if (!this.#jobs.has(jobId)) return;
      await queues.add(watched.model, queueJobId, payload);
      watched.handled = false;
      this.#options.onRequeued?.(watched.model);
      log.warn("job queued again: its gpu-worker was lost before it replied", {
        jobId,
        attempt,
        ...why,
      });
    } catch (error) {
      log.error("could not queue a lost job again", {
        jobId,
        error: error instanceof Error ? error.message : "unknown",
      });
      onLost(jobId, new WorkerLostError().toInfo());
    }
  }

  async #tick(): Promise<void> {
    if (this.#ticking || this.#closed) return;
    this.#ticking = true;
    try {
      await this.#check();
    } catch (error) {
      this.#options.log.warn("could not check the gpu-workers of running jobs", {
        error: error instanceof Error ? error.message : "unknown",
      });
    } finally {
      this.#ticking = false;
    }
  }

  async #check(): Promise<void> {
    const { redis, names, relay } = this.#options;
    const jobIds: string[] = [];
    for (const [jobId, watched] of this.#jobs) {
      if (watched.handled) continue;
      // Replies arrived: it can no longer run again, so its payload is not needed.
      if (watched.payload !== undefined && relay.delivered(jobId)) watched.payload = undefined;
      jobIds.push(jobId);
    }
    if (jobIds.length === 0) return;
    const models = [...new Set(jobIds.map((jobId) => this.#jobs.get(jobId)?.model ?? ""))];
    const pipeline = redis.pipeline().time();
    for (const model of models) pipeline.hgetall(names.modelRegistry(model));
    pipeline.mget(...jobIds.map((jobId) => names.ownerKey(jobId)));
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
    jobIds.forEach((jobId, index) => {
      const watched = this.#jobs.get(jobId);
      const owner = parseOwner(owners[index]);
      // Not taken yet, or taken by an attempt other than the current one.
      if (watched === undefined || owner === undefined || owner.workerId === "") return;
      if (owner.attempt !== watched.attempt) return;
      if (live.get(watched.model)?.has(owner.workerId)) return;
      void this.lost(jobId, { gpuWorker: owner.workerId });
    });
  }

  #stopTimer(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
  }

  /** Stops watching (idempotent). */
  close(): void {
    this.#closed = true;
    this.#stopTimer();
  }
}
