import { Queue, QueueEvents } from "bullmq";
import type { DashboardRetention } from "../../shared/config/index.js";
import type { Logger } from "../../shared/log.js";
import type { RedisNames } from "../../shared/naming.js";
import { redisCloseGraceMs, settlesWithin } from "../../shared/process/deadline.js";
import type { JobPayload } from "../../shared/protocol/index.js";
import type { RedisClient, RedisTarget } from "../../shared/redis/index.js";
import { closeRedis, createRedis, sendEach } from "../../shared/redis/index.js";

export interface QueueDepth {
  waiting: number;
  active: number;
}

/** The job states counted for metrics and the dashboard. */
const queueJobStates = ["waiting", "active", "delayed", "completed", "failed"] as const;
type QueueJobState = (typeof queueJobStates)[number];

/**
 * The orchestrator's side of the model queues: one BullMQ queue per served model, to add jobs,
 * take back jobs still waiting, and read depths; plus the queue events of each, which tell of jobs
 * that failed without a word to us (a gpu-worker that vanished mid-job).
 */
export class ModelQueues {
  readonly #queues = new Map<string, Queue>();
  readonly #events: QueueEvents[] = [];
  readonly #eventConnections: RedisClient[] = [];
  readonly #log: Logger;
  readonly #retention: DashboardRetention;
  readonly #connection: RedisClient;
  readonly #names: RedisNames;
  #closing: Promise<void> | undefined;

  constructor(options: {
    models: readonly string[];
    connection: RedisClient;
    redisTarget: RedisTarget;
    names: RedisNames;
    log: Logger;
    onFailed: (jobId: string, failedReason: string) => void;
    /** Finished jobs kept (metadata only) for the dashboard; default: removed at once. */
    retention?: DashboardRetention;
  }) {
    const { names, log } = options;
    this.#log = log;
    this.#connection = options.connection;
    this.#names = names;
    this.#retention = options.retention ?? { count: 0, ageSeconds: 0 };
    for (const model of options.models) {
      const queueName = names.modelQueue(model);
      const queue = new Queue(queueName, {
        connection: options.connection,
        prefix: names.bullPrefix,
      });
      queue.on("error", (error: Error) =>
        log.error("queue error", { model, error: error.message }),
      );
      this.#queues.set(model, queue);
      // Queue events block on XREAD: each listener gets a connection of its own.
      const connection = createRedis(options.redisTarget, `orchestrator-events-${model}`, log);
      this.#eventConnections.push(connection);
      const events = new QueueEvents(queueName, { connection, prefix: names.bullPrefix });
      events.on("error", (error: Error) =>
        log.error("queue events error", { model, error: error.message }),
      );
      events.on("failed", ({ jobId, failedReason }) => options.onFailed(jobId, failedReason));
      this.#events.push(events);
    }
  }

  /** Waits until the event listeners are connected, so no failure event can be missed. */
  async ready(): Promise<void> {
    await Promise.all(this.#events.map((events) => events.waitUntilReady()));
  }

  /**
   * Adds a job. Finished jobs are kept for the dashboard within `DASHBOARD_RETENTION` (by count
   * and age), or removed at once when it is off. What is kept is metadata only: the gpu-worker
   * replaces the sealed task with its `JobMetadata` when it takes the job.
   */
  async add(model: string, jobId: string, payload: JobPayload): Promise<void> {
    const { count, ageSeconds } = this.#retention;
    const keep = count > 0 && ageSeconds > 0 ? { count, age: ageSeconds } : true;
    await this.#queue(model).add("generate", payload, {
      jobId,
      attempts: 1,
      removeOnComplete: keep,
      removeOnFail: keep,
    });
  }

  /**
   * Which of these jobs (by BullMQ id) their queues no longer hold, in any state: what Redis lost
   * when it restarted empty. One round trip.
   */
  async missing(jobs: readonly { model: string; queueJobId: string }[]): Promise<Set<string>> {
    if (jobs.length === 0) return new Set();
    const results = await sendEach(
      this.#connection,
      jobs.map(({ model, queueJobId }) => ["exists", this.#names.queueJob(model, queueJobId)]),
    );
    return new Set(
      jobs.filter((_, index) => results[index]?.[1] === 0).map((job) => job.queueJobId),
    );
  }

  /** Removes a job that has not started; `false` if it is running (or gone). */
  async removeWaiting(model: string, jobId: string): Promise<boolean> {
    return (await this.#queue(model).remove(jobId)) === 1;
  }

  /**
   * Removes an entry that no gpu-worker runs for its job any more, whatever its state: one of a
   * job that ended (come back with a failover; its owner key says the job ended), or a lost
   * attempt's (fenced off by its owner key). An active one's lock is deleted first: BullMQ keeps
   * locked jobs.
   */
  async removeAbandoned(model: string, queueJobId: string): Promise<void> {
    await this.#connection.del(this.#names.queueJobLock(model, queueJobId));
    await this.#queue(model).remove(queueJobId);
  }

  /** Jobs waiting in a model's queue (not yet taken by a gpu-worker). */
  async waitingCount(model: string): Promise<number> {
    const counts = await this.#queue(model).getJobCounts("waiting", "prioritized");
    return (counts.waiting ?? 0) + (counts.prioritized ?? 0);
  }

  /** The Redis keys of a model's queue that hold its waiting jobs (for admission's own script). */
  waitingKeys(model: string): { wait: string; paused: string; prioritized: string } {
    const queue = this.#queue(model);
    return {
      wait: queue.toKey("wait"),
      paused: queue.toKey("paused"),
      prioritized: queue.toKey("prioritized"),
    };
  }

  /** Ids of jobs still waiting, for every model. */
  async waitingJobIds(): Promise<{ model: string; jobId: string }[]> {
    const out: { model: string; jobId: string }[] = [];
    for (const [model, queue] of this.#queues) {
      for (const job of await queue.getJobs(["waiting", "prioritized", "delayed"])) {
        if (job?.id !== undefined) out.push({ model, jobId: job.id });
      }
    }
    return out;
  }

  /** Jobs of each model's queue by state (`waiting` includes prioritized ones). */
  async counts(): Promise<Map<string, Record<QueueJobState, number>>> {
    const out = new Map<string, Record<QueueJobState, number>>();
    for (const [model, queue] of this.#queues) {
      const counts = await queue.getJobCounts("prioritized", ...queueJobStates);
      out.set(model, {
        waiting: (counts.waiting ?? 0) + (counts.prioritized ?? 0),
        active: counts.active ?? 0,
        delayed: counts.delayed ?? 0,
        completed: counts.completed ?? 0,
        failed: counts.failed ?? 0,
      });
    }
    return out;
  }

  async depths(): Promise<Map<string, QueueDepth>> {
    const out = new Map<string, QueueDepth>();
    for (const [model, queue] of this.#queues) {
      const counts = await queue.getJobCounts("waiting", "prioritized", "active");
      out.set(model, {
        waiting: (counts.waiting ?? 0) + (counts.prioritized ?? 0),
        active: counts.active ?? 0,
      });
    }
    return out;
  }

  #queue(model: string): Queue {
    const queue = this.#queues.get(model);
    if (queue === undefined) throw new Error(`no queue for model ${model}`);
    return queue;
  }

  /**
   * Closes the queues and their event listeners, giving BullMQ up to `timeoutMs` (its close waits
   * on Redis with no bound of its own), then closes the listeners' connections. Never throws.
   */
  close(timeoutMs = redisCloseGraceMs): Promise<void> {
    this.#closing ??= (async () => {
      const closed = Promise.allSettled([
        ...[...this.#queues.values()].map((queue) => queue.close()),
        ...this.#events.map((events) => events.close()),
      ]);
      if (!(await settlesWithin(closed, timeoutMs))) {
        this.#log.warn("the model queues did not close: Redis did not answer; gave up on them");
      }
      await Promise.all(this.#eventConnections.map((connection) => closeRedis(connection)));
    })();
    return this.#closing;
  }
}
