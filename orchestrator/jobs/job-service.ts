import { randomUUID } from "node:crypto";
import type { KeyRing } from "../../shared/crypto/index.js";
import {
  InternalError,
  messageOf,
  OpenAiPlaintextDisabledError,
  RedisUnavailableError,
  toErrorInfo,
} from "../../shared/errors/index.js";
import { openAiModelList } from "../../shared/openai/index.js";
import {
  redisAnswerWithin,
  redisCloseGraceMs,
  settlesWithin,
} from "../../shared/process/deadline.js";
import { type JobPayload, sealJson } from "../../shared/protocol/index.js";
import { ownerKeyTtlMs } from "../../shared/registry/job-owner.js";
import { ReplyRelay } from "../relay/reply-relay.js";
import { DurableJobs, type JobHost } from "./durable/durable-jobs.js";
import type { JobSnapshot } from "./durable/job-snapshot.js";
import { type AdmittedJob, admitJob, enqueueDeadlineMs, retryAfterOf } from "./job-admission.js";
import { EphemeralJobs, type JobPersistence } from "./job-persistence.js";
import type { JobRecord } from "./job-record.js";
import type { JobCounts, JobServiceOptions, SubmitOptions } from "./job-service-options.js";
import { JobSignals } from "./job-signals.js";
import type { JobTable } from "./job-table.js";
import { jobOfQueueJob } from "./queue-attempts.js";
import { RedisChangeRecovery } from "./redis-change-recovery.js";
import { type JobContext, TrackedJob } from "./tracked-job.js";
import { WorkerWatch } from "./worker-watch.js";

/**
 * The front door of jobs: submit (admit, then queue), find, cancel, drain. Each accepted job is a
 * {@link TrackedJob} until it ends, which owns its life from there; this service holds them by id
 * (the reply relay and the watch of gpu-workers find them here) and forgets each when it ends.
 * What makes jobs outlive this process sits behind {@link JobPersistence}.
 */
export class JobService implements JobHost {
  readonly #options: JobServiceOptions;
  readonly #jobs = new Map<string, TrackedJob>();
  readonly #admitting = new Set<Promise<JobRecord>>();
  readonly #signals: JobSignals;
  readonly #relay: ReplyRelay;
  readonly #persistence: JobPersistence;
  readonly #durable: DurableJobs | undefined;
  readonly #watch: WorkerWatch | undefined;
  readonly #redisChanges: RedisChangeRecovery;
  readonly #context: JobContext;
  #closed = false;
  #closing: Promise<void> | undefined;

  constructor(options: JobServiceOptions) {
    this.#options = options;
    const { redis, names, keyRing, queues, table, log, registryTtlMs, store } = options;
    this.#signals = new JobSignals(options);
    this.#relay = new ReplyRelay({ ...options, targets: this.#jobs });
    this.#watch =
      registryTtlMs === undefined
        ? undefined
        : new WorkerWatch({ redis, names, registryTtlMs, jobs: () => this.#jobs.values(), log });
    this.#durable =
      store === undefined
        ? undefined
        : new DurableJobs({
            store,
            redis,
            names,
            keyRing,
            clients: options.admission.clients,
            table,
            queues,
            relay: this.#relay,
            readAttempts: this.#watch !== undefined,
            presenceTtlMs: registryTtlMs ?? 10_000,
            metrics: options.metrics,
            log,
          });
    this.#durable?.attach(this);
    this.#persistence = this.#durable ?? new EphemeralJobs(this.#signals);
    this.#redisChanges = new RedisChangeRecovery({
      redis,
      names,
      queues,
      log,
      jobs: () => this.#jobs.values(),
      failLost: this.#durable === undefined,
    });
    this.#context = {
      keyRing,
      signals: this.#signals,
      queues,
      relay: this.#relay,
      persistence: this.#persistence,
      requeueLost: this.#watch !== undefined,
      continueLost: this.#watch !== undefined && options.continuations !== undefined,
      maxAttempts: options.continuations?.maxAttempts ?? 2,
      serviceTimes: options.capacity?.serviceTimes,
      metrics: options.metrics,
      log,
      onEnded: (job) => {
        this.#jobs.delete(job.id);
        this.#relay.unfollow(job.id);
        // Its names only: the job itself (record, chunks) is not kept alive.
        const { id, model, queueJobId } = job;
        this.#redisChanges.ended({ id, model, queueJobId });
      },
    };
  }

  /** The channel its jobs' gpu-workers reply on. */
  get replyChannel(): string {
    return this.#relay.channel;
  }

  /** Subscribes to replies, starts the watch and the heartbeat; resolves when jobs can be taken. */
  async start(): Promise<void> {
    await this.#relay.start();
    this.#watch?.start();
    this.#redisChanges.start();
    await this.#persistence.start();
  }

  get table(): JobTable {
    return this.#options.table;
  }

  /** A job this process holds a record of (its own, or one read before), without asking Redis. */
  known(id: string): JobRecord | undefined {
    return this.#options.table.get(id);
  }

  /** Records held in memory (for `/status`: unfinished, and finished within retention and cap). */
  get recordCount(): number {
    return this.#options.table.size;
  }

  /** The jobs this process accepted, by how they ended, and those unfinished, by status. */
  counts(): JobCounts {
    const { table } = this.#options;
    return { ...table.counts, ...table.unfinished() };
  }

  /** Jobs accepted and not yet ended. */
  get activeCount(): number {
    return this.#jobs.size;
  }

  /**
   * What the service holds for jobs now, by holder: each is back to 0 when no job runs (finished
   * records stay in the {@link table}, within its retention and cap). One that is not holds
   * something per job.
   */
  get jobsHeld(): Record<string, number> {
    return {
      tracked: this.#jobs.size,
      admitting: this.#admitting.size,
      backfilling: this.#relay.backfilling,
      mirrors: this.#durable?.mirrored ?? 0,
      unfinished: Object.values(this.table.unfinished()).reduce((sum, count) => sum + count, 0),
    };
  }

  /**
   * Accepts a job. A request that fails admission ends `FAILED` at once, with nothing queued; an
   * admitted one is on its model's queue when this resolves.
   */
  submit(input: unknown, options: SubmitOptions = {}): Promise<JobRecord> {
    // Tracked until queued, so a drain that starts meanwhile waits for it like a running job.
    const admitting = this.#submit(input, options);
    this.#admitting.add(admitting);
    void admitting.finally(() => this.#admitting.delete(admitting));
    return admitting;
  }

  async #submit(input: unknown, options: SubmitOptions): Promise<JobRecord> {
    const { table, log, queues, keyRing } = this.#options;
    const record = table.create(options.id ?? randomUUID());
    if (this.#closed) {
      record.fail(new InternalError("the orchestrator is shutting down").toInfo());
      return record;
    }
    const redisDeadline = performance.now() + enqueueDeadlineMs;
    const deadline = Date.now() + (options.timeoutMs ?? this.#options.jobTimeoutMs);
    let admission: AdmittedJob;
    try {
      admission = await admitJob(input, record.id, {
        admission: this.#options.admission,
        capacity: this.#options.capacity,
        redis: this.#options.redis,
        relay: this.#relay,
        // An id the caller chose (RunPod's) may have run on this pool before.
        ...(options.id === undefined
          ? {}
          : {
              startOver: (model: string) =>
                this.#signals.startOver(record.id, model, ownerKeyTtlMs(deadline)),
            }),
      });
    } catch (error) {
      const info = toErrorInfo(error);
      log.info("request refused", { jobId: record.id, code: info.code });
      record.retryAfterSeconds = retryAfterOf(error);
      record.fail(info);
      return record;
    }
    const { admitted, place, following, attempt } = admission;
    const { task, encryptOutput, client } = admitted;
    record.model = task.model;
    record.client = client;
    if (client !== undefined) record.clientRing = admitted.ring;
    record.openai = admitted.openai;
    // Its id may have ended here before: that end is not this run's.
    if (options.id !== undefined) this.#redisChanges.rerun(record.id);
    const payload: JobPayload = {
      v: 1,
      replyTo: this.#relay.channel,
      task: sealJson(keyRing, task),
      ...(client === undefined ? {} : { client }),
      ...(attempt > 1 ? { jobId: record.id, attempt } : {}),
    };
    const job = new TrackedJob(this.#context, {
      record,
      model: task.model,
      deadline,
      encryptOutput,
      outputRing: admitted.ring,
      payload,
      phase: "queuing",
      attempt,
    });
    this.#jobs.set(job.id, job);
    try {
      // Commands wait out a Redis reconnect; the caller should not wait for ever. The record is
      // written beside the queueing, not before it: one round trip. On a cluster the job's
      // replies' channel is subscribed first (above).
      const add = () => queues.add(task.model, job.queueJobId, payload);
      const adding = following === undefined ? add() : following.then(add);
      // Queued (it counts on the queue now) or failed: the reservation has done its work.
      if (place !== undefined) adding.then(place.release, place.release);
      await redisAnswerWithin(
        Promise.all([adding, this.#persistence.saveUnfinished(job)]),
        Math.max(0, redisDeadline - performance.now()),
      );
      job.markQueued();
      if (place?.cold) {
        // Not awaited: the job is queued; a lost request is caught by the gpu-workers' own tick.
        this.#signals.requestLoad(task.model).catch((error: unknown) =>
          log.warn("could not ask for a model's load", {
            model: task.model,
            error: messageOf(error),
          }),
        );
      }
    } catch (error) {
      log.error("could not queue a job", { jobId: record.id, error: messageOf(error) });
      // If Redis takes the job after all, once it answers again, take it back off the queue.
      void queues.removeWaiting(task.model, job.queueJobId).catch(() => {});
      record.retryAfterSeconds = retryAfterOf(error);
      job.fail(
        error instanceof RedisUnavailableError
          ? error.toInfo()
          : new InternalError("the job could not be queued").toInfo(),
      );
      return record;
    }
    log.info("job queued", { jobId: record.id, model: task.model, client });
    return record;
  }

  /**
   * A job by id: from this process's memory, else from its record in Redis (read-only: a job of
   * another orchestrator, live or gone, is shown as far as it got; adoption is the heartbeat's).
   */
  async find(id: string): Promise<JobRecord | undefined> {
    return this.known(id) ?? (await this.#persistence.find(id));
  }

  tracks(jobId: string): boolean {
    return this.#jobs.has(jobId);
  }

  tracked(): Iterable<TrackedJob> {
    return this.#jobs.values();
  }

  adopt(record: JobRecord, snapshot: JobSnapshot & { model: string }, attempt: number): TrackedJob {
    const job = new TrackedJob(this.#context, {
      record,
      model: snapshot.model,
      deadline: snapshot.deadline,
      encryptOutput: snapshot.encryptOutput,
      // Sealed to its client, from the keys file this process has (a revoked one's: the pool's).
      outputRing: this.#outputRingOf(snapshot.client),
      attempt,
      phase: "queued",
    });
    this.#jobs.set(job.id, job);
    return job;
  }

  /** A client's ring now, for a job read back from Redis (the pool's for the anonymous client). */
  #outputRingOf(client: string | undefined): KeyRing | undefined {
    if (client === undefined) return undefined;
    return this.#options.admission.clients?.ringOf(client);
  }

  /**
   * RunPod's `openai_route` `/v1/models` (no job to queue): the models served, as OpenAI lists
   * them. Throws `OPENAI_PLAINTEXT_DISABLED` unless `ALLOW_PLAINTEXT_OPENAI` is on.
   */
  openAiModels(): object {
    const { admission } = this.#options;
    if (admission.allowPlaintextOpenai !== true) throw new OpenAiPlaintextDisabledError();
    return openAiModelList(admission.models);
  }

  /**
   * Cancels a job: it ends `CANCELLED` now; if it is still queued it is taken off the queue, if it
   * runs its generation is aborted in the model thread (its final `cancelled` chunk, if it comes,
   * is kept). Returns `undefined` for an unknown job, and a finished job unchanged. `by`: who
   * stops it; a job ended by a shutdown carries the reason as its error, for its caller to see.
   */
  async cancel(id: string, by: "caller" | "shutdown" = "caller"): Promise<JobRecord | undefined> {
    const record = await this.find(id);
    if (record === undefined || record.terminal) return record;
    const job = this.#jobs.get(id);
    if (job === undefined) {
      // Tracked by another orchestrator: tell the gpu-workers; its owner records the end.
      if (record.model !== undefined) await this.#signals.stop(id, record.model, false);
      return record;
    }
    await job.cancel(by);
    return record;
  }

  /** Fails a job the queue reports failed, if its own error reply never reached us. */
  async onQueueFailed(queueJobId: string, failedReason: string): Promise<void> {
    await jobOfQueueJob(this.#jobs, queueJobId)?.queueFailed(failedReason);
  }

  /**
   * Stops accepting jobs and waits up to `timeoutMs` for the active ones to end; those still
   * running then are cancelled.
   */
  close(timeoutMs: number): Promise<void> {
    this.#closing ??= this.#drain(timeoutMs);
    return this.#closing;
  }

  async #drain(timeoutMs: number): Promise<void> {
    this.#closed = true;
    const { log } = this.#options;
    const startedAt = performance.now();
    const deadline = startedAt + timeoutMs;
    // A job already ended (cancelled, its gpu-worker yet to confirm) is not waited for.
    const unfinished = () => [...this.#jobs.values()].filter(({ record }) => !record.terminal);
    const waitingFor = unfinished().length + this.#admitting.size;
    if (waitingFor > 0) {
      log.info("waiting for unfinished jobs to end before stopping", {
        jobs: waitingFor,
        shutdownTimeoutMs: timeoutMs,
      });
    }
    // Jobs accepted just before the drain are still on their way to the queue: wait for them too.
    await settlesWithin(Promise.allSettled([...this.#admitting]), timeoutMs);
    for (const { record } of [...this.#jobs.values()]) {
      await record.waitForEnd(Math.max(0, deadline - performance.now()));
    }
    const waitedMs = Math.round(performance.now() - startedAt);
    const left = unfinished().length;
    if (left > 0) {
      log.warn("cancelling the jobs still unfinished at SHUTDOWN_TIMEOUT_MS", {
        jobs: left,
        waitedMs,
      });
    } else if (waitingFor > 0) {
      log.info("every unfinished job ended", { jobs: waitingFor, waitedMs });
    }
    // Each is CANCELLED at once; telling the gpu-workers needs Redis, which gets a short grace.
    const cancels = [...this.#jobs.values()].map((job) => job.cancel("shutdown"));
    if (!(await settlesWithin(Promise.all(cancels), redisCloseGraceMs))) {
      log.warn("Redis did not carry the cancels of the jobs left at shutdown", {
        jobs: cancels.length,
      });
    }
    for (const job of this.#jobs.values()) job.stopTimer();
    this.#watch?.close();
  }

  /** After {@link close}: stops the heartbeat and the reply subscription (never throws). */
  async disconnect(): Promise<void> {
    this.#watch?.close();
    this.#redisChanges.close();
    await this.#persistence.close();
    await this.#relay.close();
  }
}
