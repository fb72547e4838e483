import { randomUUID } from "node:crypto";
import type { Redis } from "ioredis";
import type { KeyRing } from "../../shared/crypto/index.js";
import {
  ErrorCode,
  type ErrorInfo,
  InternalError,
  isErrorCode,
  JobLostError,
  OpenAiPlaintextDisabledError,
  PoolError,
  RedisUnavailableError,
  TimedOutError,
  toErrorInfo,
  WorkerLostError,
} from "../../shared/errors/index.js";
import type { Logger } from "../../shared/log.js";
import type { RedisNames } from "../../shared/naming.js";
import { openAiModelList } from "../../shared/openai/index.js";
import {
  redisAnswerWithin,
  redisCloseGraceMs,
  settlesWithin,
} from "../../shared/process/deadline.js";
import {
  encryptChunk,
  type FinalChunk,
  isFinalChunk,
  isTerminalStatus,
  type JobPayload,
  type ReplyMessage,
  type StreamChunk,
  sealJson,
} from "../../shared/protocol/index.js";
import {
  type AdmittedCapacity,
  admitCapacity,
  type CapacityPolicy,
} from "../admission/admit-capacity.js";
import { type AdmissionPolicy, admitRequest } from "../admission/admit-request.js";
import type { ReplyRelay } from "../relay/reply-relay.js";
import { JobMirrors } from "./job-mirrors.js";
import type { JobRecord } from "./job-record.js";
import { JobSignals } from "./job-signals.js";
import { type JobSnapshot, recordOf, snapshotOf } from "./job-snapshot.js";
import type { JobStore } from "./job-store.js";
import type { JobTable } from "./job-table.js";
import type { ModelQueues } from "./model-queues.js";
import { WorkerWatch } from "./worker-watch.js";

export interface JobServiceOptions {
  redis: Redis;
  names: RedisNames;
  queues: ModelQueues;
  relay: ReplyRelay;
  table: JobTable;
  admission: AdmissionPolicy;
  /** Live-worker and queue-limit checks; without it every configured model is taken, unlimited. */
  capacity?: CapacityPolicy;
  keyRing: KeyRing;
  /** Default limit on a job's life, from acceptance; a submit may ask for a shorter or longer one. */
  jobTimeoutMs: number;
  /**
   * `REGISTRY_TTL_MS`: when set, running jobs whose gpu-worker's registry entry lapsed are found
   * within it and run again or failed `WORKER_LOST` (see `worker-watch.ts`).
   */
  registryTtlMs?: number;
  /**
   * The jobs' records in Redis: with it, jobs are answered for after this process restarts, or by
   * any orchestrator on the same Redis, and jobs Redis lost are failed `JOB_LOST`. Without it (a
   * RunPod worker: the platform keeps results) jobs live in this process's memory only.
   */
  store?: JobStore;
  /** Told of each completed job's final chunk (latencies, token counts). */
  metrics?: {
    jobCompleted(model: string, final: FinalChunk): void;
    jobRecovered(model: string, how: "requeued" | "adopted"): void;
  };
  log: Logger;
}

export interface SubmitOptions {
  /** The job's id (RunPod's, in worker mode); a random UUID by default. */
  id?: string;
  /** Overrides the default job timeout, in milliseconds. */
  timeoutMs?: number;
}

interface Active {
  record: JobRecord;
  model: string;
  timer: NodeJS.Timeout;
  /** When it times out, epoch ms. */
  deadline: number;
  /** Whether Redis confirmed it on its queue (until then it cannot be missing from there). */
  queued: boolean;
  /** Whether the caller gets this job's chunks encrypted (`encrypt_output`, `ENCRYPT_OUTPUT`). */
  encryptOutput: boolean;
}

/**
 * The path of a job through the orchestrator: admit (decrypt, validate), track its replies, queue
 * it on its model's queue, turn replies into stream chunks, and end it: completed, failed,
 * cancelled or timed out. When a job ends its reply stream is deleted at once.
 */
export class JobService {
  readonly #options: JobServiceOptions;
  readonly #signals: JobSignals;
  readonly #mirrors: JobMirrors;
  readonly #watch: WorkerWatch | undefined;
  readonly #active = new Map<string, Active>();
  readonly #admitting = new Set<Promise<JobRecord>>();
  #closed = false;
  #closing: Promise<void> | undefined;

  constructor(options: JobServiceOptions) {
    this.#options = options;
    this.#signals = new JobSignals(options);
    this.#mirrors = new JobMirrors(options);
    const { registryTtlMs } = options;
    this.#watch =
      registryTtlMs === undefined
        ? undefined
        : new WorkerWatch({
            ...options,
            registryTtlMs,
            onLost: (jobId, error) => this.#finish(jobId, (r) => r.fail(error)),
            onRequeued: (model) => options.metrics?.jobRecovered(model, "requeued"),
          });
  }

  get table(): JobTable {
    return this.#options.table;
  }

  /** Jobs accepted and not yet ended. */
  get activeCount(): number {
    return this.#active.size;
  }

  /**
   * What the service holds for jobs now, by holder: each is back to 0 when no job runs (finished
   * records stay in the {@link table}, within its retention and cap). One that is not holds
   * something per job.
   */
  get jobsHeld(): Record<string, number> {
    const watch = this.#watch?.size ?? { watched: 0, requeued: 0 };
    return {
      active: this.#active.size,
      admitting: this.#admitting.size,
      mirrors: this.#mirrors.size,
      relay: this.#options.relay.size,
      watched: watch.watched,
      requeued: watch.requeued,
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
    const { table, log, admission, relay, queues, keyRing } = this.#options;
    const record = table.create(options.id ?? randomUUID());
    if (this.#closed) {
      record.fail(new InternalError("the orchestrator is shutting down").toInfo());
      return record;
    }
    let admitted: ReturnType<typeof admitRequest>;
    let place: AdmittedCapacity | undefined;
    const redisDeadline = performance.now() + enqueueDeadlineMs;
    try {
      admitted = admitRequest(input, admission);
      this.#checkRedisConnected();
      const { capacity } = this.#options;
      if (capacity) {
        const admitting = admitCapacity(admitted.task, record.id, capacity);
        try {
          place = await redisAnswerWithin(admitting, enqueueDeadlineMs);
        } catch (error) {
          // Past the deadline: a place that Redis reserves once it answers again is given back.
          admitting.then(
            (late) => late.release(),
            () => {},
          );
          throw error;
        }
      }
    } catch (error) {
      const info = toErrorInfo(error);
      log.info("request refused", { jobId: record.id, code: info.code });
      record.retryAfterSeconds = retryAfterOf(error);
      record.fail(info);
      return record;
    }
    const { task, encryptOutput } = admitted;
    record.model = task.model;
    record.openai = admitted.openai;
    const timeoutMs = options.timeoutMs ?? this.#options.jobTimeoutMs;
    const active = this.#track(record, task.model, encryptOutput, Date.now() + timeoutMs);
    const payload: JobPayload = { v: 1, replyTo: relay.channel, task: sealJson(keyRing, task) };
    this.#watch?.track(record.id, task.model, payload, timeoutMs);
    try {
      // Commands wait out a Redis reconnect; the caller should not wait for ever. The record is
      // written beside the queueing, not before it: one round trip.
      const adding = queues.add(task.model, record.id, payload);
      // Queued (it counts on the queue now) or failed: the reservation has done its work.
      if (place !== undefined) adding.then(place.release, place.release);
      await redisAnswerWithin(
        Promise.all([adding, this.#saveUnfinished(active)]),
        Math.max(0, redisDeadline - performance.now()),
      );
      active.queued = true;
    } catch (error) {
      log.error("could not queue a job", {
        jobId: record.id,
        error: error instanceof Error ? error.message : "unknown",
      });
      // If Redis takes the job after all, once it answers again, take it back off the queue.
      void queues.removeWaiting(task.model, record.id).catch(() => {});
      record.retryAfterSeconds = retryAfterOf(error);
      const info =
        error instanceof RedisUnavailableError
          ? error.toInfo()
          : new InternalError("the job could not be queued").toInfo();
      this.#finish(record.id, (r) => r.fail(info));
      return record;
    }
    log.info("job queued", { jobId: record.id, model: task.model });
    return record;
  }

  /** Starts tracking an unfinished job: its timeout, and its replies. */
  #track(record: JobRecord, model: string, encryptOutput: boolean, deadline: number): Active {
    const timeoutMs = Math.max(0, deadline - Date.now());
    const total = Math.max(0, deadline - record.acceptedAtDate);
    const timer = setTimeout(() => void this.#timeOut(record.id, total), timeoutMs);
    timer.unref();
    const active: Active = { record, model, timer, deadline, encryptOutput, queued: false };
    this.#active.set(record.id, active);
    this.#options.relay.track(record.id, {
      onStarted: () => record.markStarted(),
      onReply: (message) => this.#onReply(record.id, message),
      onUnreadable: () =>
        this.#finish(record.id, (r) =>
          r.fail(
            new InternalError(
              "a reply for this job could not be opened: do the orchestrator and the gpu-workers share the same ENCRYPTION_KEY?",
            ).toInfo(),
          ),
        ),
    });
    return active;
  }

  /** Writes an unfinished job's record to Redis (when records are kept there). */
  async #saveUnfinished(active: Active): Promise<void> {
    const { store } = this.#options;
    if (store === undefined) return;
    await store.saveUnfinished(
      snapshotOf(active.record, {
        owner: store.owner,
        deadline: active.deadline,
        encryptOutput: active.encryptOutput,
      }),
    );
  }

  /**
   * A job by id: from this process's memory, else from its record in Redis. A job whose
   * orchestrator is gone is adopted first (this one then tracks it to its end); one another live
   * orchestrator tracks is shown as its record says, read-only.
   */
  async find(id: string): Promise<JobRecord | undefined> {
    const { table, store } = this.#options;
    const known = table.get(id);
    if (known !== undefined || store === undefined) return known;
    const snapshot = await store.load(id);
    if (snapshot === undefined) return undefined;
    if (isTerminalStatus(snapshot.status)) {
      // Chunks a mirror here already handed to `/stream` are not handed out again.
      const streamed = Math.max(snapshot.streamed ?? 0, this.#mirrors.streamedOf(id));
      this.#mirrors.forget(id);
      return table.insert(recordOf({ ...snapshot, streamed }));
    }
    if (!(await store.isAlive(snapshot.owner))) {
      this.#mirrors.forget(id);
      await this.adopt(await store.claimFrom(snapshot.owner));
      const adopted = table.get(id);
      if (adopted !== undefined) return adopted;
    }
    return this.#mirrors.follow(snapshot);
  }

  /**
   * Takes over jobs an orchestrator that is gone had accepted (claimed already, see
   * `JobStore.claimOrphans`): each is tracked here to its end, from its record in Redis, its
   * reply stream (what it produced so far) and its old reply channel (what it produces next).
   */
  async adopt(ids: readonly string[]): Promise<void> {
    const { store, table, relay, log } = this.#options;
    if (store === undefined) return;
    for (const id of ids) {
      if (table.has(id)) continue;
      let snapshot: JobSnapshot | undefined;
      try {
        snapshot = await store.load(id);
      } catch (error) {
        log.warn("could not read an adopted job's record", {
          jobId: id,
          error: error instanceof Error ? error.message : "unknown",
        });
        continue;
      }
      // Expired or lost: nothing to answer for.
      if (snapshot === undefined) continue;
      const record = table.insert(recordOf(snapshot, table.endListener));
      if (record.terminal || snapshot.model === undefined) continue;
      await relay.listen(relay.channelOf(snapshot.owner));
      const active = this.#track(record, snapshot.model, snapshot.encryptOutput, snapshot.deadline);
      active.queued = true;
      await this.#watch?.adopt(id, snapshot.model, snapshot.deadline - Date.now());
      await this.#saveUnfinished(active);
      this.#options.metrics?.jobRecovered(snapshot.model, "adopted");
      log.info("job adopted from an orchestrator that is gone", {
        jobId: id,
        model: snapshot.model,
        from: snapshot.owner,
      });
      void relay.backfill(id);
    }
  }

  /**
   * After Redis lost its data (restarted empty, or was flushed): fails `JOB_LOST` the jobs whose
   * queue entry it lost (waiting ones, and running ones, whose gpu-worker lost its lock on them
   * and stops), and writes the records of the others again.
   */
  async recoverFromLostRedis(): Promise<void> {
    const { queues, log } = this.#options;
    // Each by the BullMQ id of its current attempt (a job run again has its own).
    const queued = [...this.#active.values()]
      .filter((active) => active.queued && !active.record.terminal)
      .map((active) => ({
        active,
        model: active.model,
        queueJobId: this.#watch?.queueJobId(active.record.id) ?? active.record.id,
      }));
    const missing = await queues.missing(queued);
    for (const { active, queueJobId } of queued) {
      if (!missing.has(queueJobId)) continue;
      this.#finish(active.record.id, (r) => r.fail(new JobLostError().toInfo()));
    }
    const lost = missing.size;
    await Promise.all([...this.#active.values()].map((active) => this.#saveUnfinished(active)));
    // Also reached when this orchestrator's presence merely lapsed (Redis unreachable for longer
    // than the TTL, data intact): then nothing was lost.
    log[lost > 0 ? "warn" : "info"]("checked the jobs after this orchestrator's presence lapsed", {
      lost,
      kept: this.#active.size,
    });
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
    const active = this.#active.get(id);
    if (active === undefined) {
      // Tracked by another live orchestrator: tell the gpu-workers; its owner records the end.
      if (record.model !== undefined) await this.#signals.stop(id, record.model, false);
      return record;
    }
    if (by === "shutdown") {
      record.stop("CANCELLED", shutdownCancelError.toInfo());
      this.#options.log.warn("job cancelled: the orchestrator is shutting down", { jobId: id });
    } else {
      record.stop("CANCELLED");
      this.#options.log.info("job cancelled by the caller", { jobId: id });
    }
    await this.#stopJob(id);
    return record;
  }

  /** Fails a job the queue reports failed, if its own error reply never reached us. */
  async onQueueFailed(queueJobId: string, failedReason: string): Promise<void> {
    // `undefined`: an attempt superseded after its gpu-worker was lost; not the job's failure.
    const jobId = this.#watch ? this.#watch.jobOf(queueJobId) : queueJobId;
    if (jobId === undefined || !this.#active.has(jobId)) return;
    await this.#options.relay.backfill(jobId);
    if (!this.#active.has(jobId)) return;
    const error = parseFailedReason(failedReason);
    if (error.code === ErrorCode.WORKER_LOST && this.#watch) await this.#watch.lost(jobId);
    else this.#finish(jobId, (record) => record.fail(error));
  }

  #onReply(jobId: string, message: ReplyMessage): void {
    const active = this.#active.get(jobId);
    if (active === undefined) return;
    const { record } = active;
    if (message.kind === "delta") {
      this.#emit(active, { seq: message.seq, delta: message.text });
      return;
    }
    if (message.kind === "error") {
      this.#finish(jobId, (r) => r.fail({ code: message.code, message: message.message }));
      return;
    }
    const now = performance.now();
    const totalMs = Math.round(now - record.acceptedAt);
    const final: FinalChunk = {
      seq: message.seq,
      done: true,
      finish_reason: message.finishReason,
      usage: {
        prompt_tokens: message.promptTokens,
        completion_tokens: message.completionTokens,
        prompt_tokens_details: { cached_tokens: message.cachedTokens ?? 0 },
      },
      timings: {
        queue_ms: Math.max(0, totalMs - Math.round(message.runMs)),
        ttft_ms: Math.round((record.firstChunkAt ?? now) - record.acceptedAt),
        total_ms: totalMs,
      },
      ...(message.seed === undefined ? {} : { seed: message.seed }),
    };
    if (!record.terminal) {
      this.#options.metrics?.jobCompleted(active.model, final);
      this.#options.capacity?.serviceTimes.observe(active.model, message.runMs);
    }
    this.#emit(active, final);
    this.#finish(jobId, (r) => r.complete());
  }

  /**
   * The one place a job's chunks are made visible (to `/stream`, `/status`, `/runsync` and any
   * other front end reading the record): encrypted here when the job's output is to be.
   */
  #emit(active: Active, chunk: StreamChunk): void {
    const { keyRing } = this.#options;
    active.record.addChunk(
      active.encryptOutput ? encryptChunk(keyRing, chunk) : chunk,
      isFinalChunk(chunk),
    );
  }

  async #timeOut(jobId: string, timeoutMs: number): Promise<void> {
    const active = this.#active.get(jobId);
    if (active === undefined) return;
    if (active.record.terminal) {
      // Cancelled earlier, and its gpu-worker never confirmed: stop tracking it.
      this.#finish(jobId, () => {});
      return;
    }
    active.record.stop(
      "TIMED_OUT",
      new TimedOutError(`the job did not finish within ${timeoutMs} ms`).toInfo(),
    );
    this.#options.log.warn("job timed out", { jobId, timeoutMs });
    await this.#stopJob(jobId);
  }

  /** Stops a job wherever it is: off the queue if waiting, else aborted by its gpu-worker. */
  async #stopJob(jobId: string): Promise<void> {
    const active = this.#active.get(jobId);
    if (active === undefined) return;
    try {
      // Commands wait out a Redis reconnect; a cancel (or a shutdown) must not wait for ever.
      const wasWaiting = await redisAnswerWithin(
        this.#signals.stop(jobId, active.model, true, this.#watch?.queueJobId(jobId)),
        stopDeadlineMs,
      );
      // Taken off the queue: no gpu-worker will confirm its end, so its tracking ends now.
      if (wasWaiting) this.#finish(jobId, () => {});
    } catch (error) {
      this.#options.log.warn("could not signal a cancellation", {
        jobId,
        error: error instanceof Error ? error.message : "unknown",
      });
    }
  }

  /** Ends a job's tracking: applies the end, forgets the job, and deletes what Redis holds of it. */
  #finish(jobId: string, end: (record: JobRecord) => void): void {
    const active = this.#active.get(jobId);
    if (active === undefined) return;
    end(active.record);
    clearTimeout(active.timer);
    this.#active.delete(jobId);
    this.#options.relay.untrack(jobId);
    this.#watch?.untrack(jobId);
    const { log, store } = this.#options;
    const ended =
      store === undefined
        ? this.#signals.forget(jobId)
        : store.saveEnded(
            snapshotOf(active.record, {
              owner: store.owner,
              deadline: active.deadline,
              encryptOutput: active.encryptOutput,
            }),
          );
    ended.catch((error: Error) =>
      log.warn("could not record a job's end in Redis", { jobId, error: error.message }),
    );
    log.info("job ended", {
      jobId,
      status: active.record.status,
      code: active.record.error?.code,
      chunks: active.record.chunks.length,
    });
  }

  /**
   * Fails fast while the Redis connection is known to be down (lost, reconnecting): a command
   * would wait for the reconnect, up to the deadline, with the caller on hold.
   */
  #checkRedisConnected(): void {
    if (!redisDownStates.has(this.#options.redis.status)) return;
    throw new RedisUnavailableError("Redis is not connected; try again shortly");
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
    const unfinished = () => [...this.#active.values()].filter(({ record }) => !record.terminal);
    const waitingFor = unfinished().length + this.#admitting.size;
    if (waitingFor > 0) {
      log.info("waiting for unfinished jobs to end before stopping", {
        jobs: waitingFor,
        shutdownTimeoutMs: timeoutMs,
      });
    }
    // Jobs accepted just before the drain are still on their way to the queue: wait for them too.
    await settlesWithin(Promise.allSettled([...this.#admitting]), timeoutMs);
    for (const { record } of [...this.#active.values()]) {
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
    const cancels = [...this.#active.keys()].map((jobId) => this.cancel(jobId, "shutdown"));
    if (!(await settlesWithin(Promise.all(cancels), redisCloseGraceMs))) {
      this.#options.log.warn("Redis did not carry the cancels of the jobs left at shutdown", {
        jobs: cancels.length,
      });
    }
    for (const { timer } of this.#active.values()) clearTimeout(timer);
    this.#watch?.close();
  }
}

/** What the caller of a job still running when the orchestrator stops sees (status `CANCELLED`). */
const shutdownCancelError = new InternalError("the orchestrator shut down before the job finished");
/**
 * How long `/run` waits for Redis to admit and take a job (both together) before refusing it
 * `REDIS_UNAVAILABLE`, when the connection looks up but Redis does not answer.
 */
const enqueueDeadlineMs = 3000;
/** ioredis connection states in which the server is known to be gone. */
const redisDownStates: ReadonlySet<string> = new Set(["reconnecting", "close", "end"]);
/** `Retry-After` of `REDIS_UNAVAILABLE`: about one reconnect attempt of the connection. */
const redisRetryAfterSeconds = 2;

/** When a refused caller should try again, in seconds; `undefined` if trying again won't help. */
function retryAfterOf(error: unknown): number | undefined {
  if (!(error instanceof PoolError)) return undefined;
  if (error instanceof RedisUnavailableError)
    return error.retryAfterSeconds ?? redisRetryAfterSeconds;
  return error.retryAfterSeconds;
}
/** How long stopping a job waits for Redis to carry the cancel before giving up (logged). */
const stopDeadlineMs = 5000;

function parseFailedReason(reason: string): ErrorInfo {
  try {
    const parsed: unknown = JSON.parse(reason);
    if (
      typeof parsed === "object" &&
      parsed !== null &&
      "code" in parsed &&
      "message" in parsed &&
      isErrorCode(parsed.code) &&
      typeof parsed.message === "string"
    ) {
      return { code: parsed.code, message: parsed.message };
    }
  } catch {
    // Not ours: BullMQ's own reasons, such as a stalled job (its gpu-worker stopped).
  }
  return new WorkerLostError().toInfo();
}
