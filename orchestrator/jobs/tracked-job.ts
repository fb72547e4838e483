import type { KeyRing } from "../../shared/crypto/index.js";
import {
  ErrorCode,
  type ErrorInfo,
  InternalError,
  messageOf,
  TimedOutError,
  WorkerLostError,
} from "../../shared/errors/index.js";
import type { Logger } from "../../shared/log.js";
import { RedisNames } from "../../shared/naming.js";
import { redisAnswerWithin } from "../../shared/process/deadline.js";
import {
  choiceEndsOf,
  deltaChunkOf,
  encryptChunk,
  type FinalChunk,
  isFinalChunk,
  type JobPayload,
  type ReplyEnvelope,
  type ReplyMessage,
  type StreamChunk,
} from "../../shared/protocol/index.js";
import { ownerKeyTtlMs } from "../../shared/registry/job-owner.js";
import type { ServiceTimes } from "../admission/service-times.js";
import { JobReplies } from "../relay/job-replies.js";
import type { ReplyRelay, ReplyTarget } from "../relay/reply-relay.js";
import { DeliveredTokens } from "./delivered-tokens.js";
import type { JobPersistence } from "./job-persistence.js";
import type { JobRecord } from "./job-record.js";
import type { JobSignals } from "./job-signals.js";
import type { ModelQueues } from "./model-queues.js";
import { nextAttemptPayload, reportNextAttempt } from "./next-attempt.js";
import { parseFailedReason } from "./queue-attempts.js";

/**
 * Where a tracked job is in its life, on this orchestrator's side:
 *
 * ```
 * queuing ─► queued ─► running ─► ended
 *    │          │         │         ▲
 *    └──────────┴─────────┴─► stopping (cancelled or timed out; the gpu-worker's end awaited)
 * ```
 *
 * A job lost with its gpu-worker before it replied goes back from `running` to `queued` (its
 * next attempt). The caller-facing status is its {@link JobRecord}'s: a `stopping` job is
 * already `CANCELLED` or `TIMED_OUT` there.
 */
export type JobPhase = "queuing" | "queued" | "running" | "stopping" | "ended";

/** How long stopping a job waits for Redis to carry the cancel before giving up (logged). */
const stopDeadlineMs = 5000;

/** What every tracked job shares: the parts of the orchestrator its life touches. */
export interface JobContext {
  keyRing: KeyRing;
  signals: JobSignals;
  queues: ModelQueues;
  relay: ReplyRelay;
  persistence: JobPersistence;
  /** Whether a job lost with its gpu-worker before it replied is queued again (the watch runs). */
  requeueLost: boolean;
  /**
   * Whether a job lost after it replied goes on, on another gpu-worker, from the text delivered
   * (the local API; not a RunPod worker, whose gpu-worker dies with its container).
   */
  continueLost: boolean;
  /** A job runs at most this often (`MAX_JOB_ATTEMPTS`; 2 on RunPod: once more before a reply). */
  maxAttempts: number;
  /** Each model's recent run time, for `Retry-After`. */
  serviceTimes?: ServiceTimes | undefined;
  metrics?:
    | {
        jobCompleted(model: string, final: FinalChunk, client?: string): void;
        jobRecovered(model: string, how: "requeued" | "continued" | "adopted"): void;
      }
    | undefined;
  log: Logger;
  /** Told once, when a job leaves tracking. */
  onEnded(job: TrackedJob): void;
}

export interface TrackedJobOptions {
  record: JobRecord;
  model: string;
  /** When it times out, epoch ms. */
  deadline: number;
  /** Whether the caller gets its chunks encrypted (`encrypt_output`, `ENCRYPT_OUTPUT`). */
  encryptOutput: boolean;
  /** What encrypted chunks are sealed with: its client's ring (default: the pool's, anonymous). */
  outputRing?: KeyRing | undefined;
  /** The job as queued: what a next attempt is queued with (unknown for an adopted job). */
  payload?: JobPayload | undefined;
  /** The attempt running now (an adopted job's may be 2). */
  attempt?: number;
  /** `queuing` for a job being accepted; `queued` for one adopted (it is on its queue). */
  phase: "queuing" | "queued";
}

/**
 * One accepted job, from its queueing to its end, and the only place its state changes: its
 * phase, its record (what callers see), its timeout, its current attempt and the order of its
 * replies. The job service creates it and forgets it when it ends; the reply relay hands it its
 * replies, the watch of gpu-workers tells it when its gpu-worker is lost.
 */
export class TrackedJob implements ReplyTarget {
  readonly record: JobRecord;
  readonly model: string;
  readonly deadline: number;
  readonly encryptOutput: boolean;
  readonly #context: JobContext;
  readonly #outputRing: KeyRing;
  readonly #timer: NodeJS.Timeout;
  #phase: JobPhase;
  /** Its replies: the current attempt's, opened and in order. */
  readonly #replies: JobReplies;
  #payload: JobPayload | undefined;
  /** The token ids of the text its caller got: where a continuation starts. */
  readonly #delivered = new DeliveredTokens();
  /** Its loss is being handled (queued again or failed): not reported lost again meanwhile. */
  #handlingLoss = false;

  constructor(context: JobContext, options: TrackedJobOptions) {
    this.#context = context;
    this.record = options.record;
    this.model = options.model;
    this.deadline = options.deadline;
    this.encryptOutput = options.encryptOutput;
    this.#outputRing = options.outputRing ?? context.keyRing;
    this.#payload = options.payload;
    this.#phase = options.phase;
    this.#replies = new JobReplies(
      {
        jobId: this.id,
        keyRing: context.keyRing,
        log: context.log,
        onStarted: () => this.#running(),
        onReply: (message) => this.#apply(message),
        onUnreadable: () => this.#unreadable(),
        onGap: () => void context.relay.backfill(this.id),
      },
      options.attempt ?? 1,
    );
    const totalMs = Math.max(0, this.deadline - this.record.acceptedAtDate);
    this.#timer = setTimeout(
      () => void this.#timeOut(totalMs),
      Math.max(0, this.deadline - Date.now()),
    );
    this.#timer.unref();
  }

  get id(): string {
    return this.record.id;
  }

  get phase(): JobPhase {
    return this.#phase;
  }

  get attempt(): number {
    return this.#replies.attempt;
  }

  /** The BullMQ id of its current attempt (an attempt after the first has an id of its own). */
  get queueJobId(): string {
    return RedisNames.queueJobId(this.id, this.attempt);
  }

  /** Whether it can be found lost: it is tracked, and no loss of it is being handled. */
  get watchable(): boolean {
    return this.#phase !== "ended" && !this.#handlingLoss;
  }

  /** Redis took it onto its queue. */
  markQueued(): void {
    if (this.#phase === "queuing") this.#phase = "queued";
  }

  /** A reply of this job, as the relay got it: see {@link JobReplies}. */
  receive(envelope: ReplyEnvelope): void {
    this.#replies.receive(envelope);
  }

  /** Cancels it: `CANCELLED` at once, then stopped wherever it is. `by`: who stops it. */
  async cancel(by: "caller" | "shutdown"): Promise<void> {
    if (this.record.terminal) return;
    if (by === "shutdown") {
      this.record.stop("CANCELLED", shutdownCancelError.toInfo());
      this.#context.log.warn("job cancelled: the orchestrator is shutting down", {
        jobId: this.id,
      });
    } else {
      this.record.stop("CANCELLED");
      this.#context.log.info("job cancelled by the caller", {
        jobId: this.id,
        client: this.record.client,
      });
    }
    await this.#stop();
  }

  /**
   * Its gpu-worker was lost (or BullMQ failed it as stalled): it runs again if it replied nothing
   * yet, or goes on from the text delivered (a continuation, see `delivered-tokens.ts`), while it
   * has attempts left (`MAX_JOB_ATTEMPTS`); else it fails `WORKER_LOST`. The owner key is changed
   * first, so the lost gpu-worker, should it come back, can write nothing more for it.
   * `dropEntry`: the lost attempt's queue entry is still held by the gpu-worker (the watch found
   * it gone), and is removed once the next attempt is queued.
   */
  async lost(why: Record<string, unknown> = {}, dropEntry = false): Promise<void> {
    if (!this.watchable) return;
    this.#handlingLoss = true;
    const { signals, queues, log, metrics, keyRing } = this.#context;
    if (this.#phase === "stopping") {
      // Cancelled or timed out already: nobody is left to confirm its end.
      log.info("a stopped job's gpu-worker was lost", { jobId: this.id, ...why });
      this.forget();
      return;
    }
    const payload = this.#payload;
    const from = this.#replies.next;
    const continuation = from > 0 ? this.#delivered.continuation(from) : undefined;
    if (
      !this.#context.requeueLost ||
      payload === undefined ||
      (from > 0 && (!this.#context.continueLost || continuation === undefined)) ||
      this.attempt >= this.#context.maxAttempts
    ) {
      log.warn("job lost with its gpu-worker", { jobId: this.id, attempt: this.attempt, ...why });
      this.fail(new WorkerLostError().toInfo());
      return;
    }
    // At once, before anything is awaited: what the lost attempt still sends is dropped.
    const lostEntry = this.queueJobId;
    const attempt = this.attempt + 1;
    this.#replies.restart(attempt, from);
    this.#phase = "queued";
    try {
      await signals.fence(this.id, attempt, ownerKeyTtlMs(this.deadline), continuation?.seq);
      if (this.#ended()) return;
      const next = { jobId: this.id, model: this.model, attempt, continuation };
      await queues.add(this.model, this.queueJobId, nextAttemptPayload(payload, next, keyRing));
      this.#handlingLoss = false;
      reportNextAttempt(next, why, log, metrics);
      // The lost attempt's entry, active under the lock of a gpu-worker that is gone, would stay
      // until BullMQ's stalled check (`JOB_LOCK_MS` and more): fenced off now, it goes.
      if (dropEntry) {
        queues.removeAbandoned(this.model, lostEntry).catch((error: unknown) =>
          log.warn("could not remove a lost attempt's queue entry", {
            jobId: this.id,
            error: messageOf(error),
          }),
        );
      }
    } catch (error) {
      log.error("could not queue a lost job again", { jobId: this.id, error: messageOf(error) });
      this.fail(new WorkerLostError().toInfo());
    }
  }

  /**
   * BullMQ failed its current attempt: the error reply that should have said so is looked for in
   * its stream first; else it fails with BullMQ's reason (a lost gpu-worker's: run again).
   */
  async queueFailed(failedReason: string): Promise<void> {
    await this.#context.relay.backfill(this.id);
    if (this.#phase === "ended") return;
    const error = parseFailedReason(failedReason);
    if (error.code === ErrorCode.WORKER_LOST && this.#context.requeueLost) await this.lost();
    else this.fail(error);
  }

  /** Ends it `FAILED` (unless it ended already) and stops tracking it. */
  fail(error: ErrorInfo): void {
    this.#end((record) => record.fail(error));
  }

  /**
   * Stops tracking it, its record left as it is (the job ended elsewhere: a cancel taken off the
   * queue, a drain's last step).
   */
  forget(): void {
    this.#end(() => {});
  }

  /** Whether it ended (a method: a transition may happen inside any call). */
  #ended(): boolean {
    return this.#phase === "ended";
  }

  /** At shutdown, past the drain: its timeout no longer fires (Redis is about to go). */
  stopTimer(): void {
    clearTimeout(this.#timer);
  }

  #running(): void {
    this.record.markStarted();
    if (this.#phase === "queued" || this.#phase === "queuing") this.#phase = "running";
  }

  #apply(message: ReplyMessage): void {
    this.#running();
    // Replies arrived: it can only go on from them, where continuations are made.
    if (!this.#context.continueLost) this.#payload = undefined;
    if (message.kind === "delta") {
      this.#delivered.add(message);
      this.#emit(deltaChunkOf(message));
      return;
    }
    if (message.kind === "error") {
      this.fail({ code: message.code, message: message.message });
      return;
    }
    const { record } = this;
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
        load_ms: Math.round(message.loadMs ?? 0),
        ttft_ms: Math.round((record.firstChunkAt ?? now) - record.acceptedAt),
        total_ms: totalMs,
      },
      ...(message.seed === undefined ? {} : { seed: message.seed }),
      ...(message.embeddings === undefined ? {} : { embeddings: message.embeddings }),
      ...choiceEndsOf(message.choices),
      ...(this.attempt > 1 ? { attempts: this.attempt } : {}),
    };
    if (!record.terminal) {
      this.#context.metrics?.jobCompleted(this.model, final, record.client);
      this.#context.serviceTimes?.observe(this.model, message.runMs);
    }
    this.#emit(final);
    this.#end((r) => r.complete());
  }

  /**
   * The one place a job's chunks are made visible (to `/stream`, `/status`, `/runsync` and any
   * other front end reading the record): encrypted here when the job's output is to be.
   */
  #emit(chunk: StreamChunk): void {
    this.record.addChunk(
      this.encryptOutput ? encryptChunk(this.#outputRing, chunk) : chunk,
      isFinalChunk(chunk),
    );
  }

  #unreadable(): void {
    this.fail(
      new InternalError(
        "a reply for this job could not be opened: do the orchestrator and the gpu-workers share the same ENCRYPTION_KEY?",
      ).toInfo(),
    );
  }

  async #timeOut(timeoutMs: number): Promise<void> {
    if (this.#phase === "ended") return;
    if (this.record.terminal) {
      // Cancelled earlier, and its gpu-worker never confirmed: stop tracking it.
      this.forget();
      return;
    }
    this.record.stop(
      "TIMED_OUT",
      new TimedOutError(`the job did not finish within ${timeoutMs} ms`).toInfo(),
    );
    this.#context.log.warn("job timed out", { jobId: this.id, timeoutMs });
    await this.#stop();
  }

  /**
   * Stops it wherever it is: off the queue if waiting (it then ends here: no gpu-worker will
   * confirm), else aborted by its gpu-worker, whose final reply ends it.
   */
  async #stop(): Promise<void> {
    if (this.#phase === "ended") return;
    this.#phase = "stopping";
    const { signals, log } = this.#context;
    try {
      // Commands wait out a Redis reconnect; a cancel (or a shutdown) must not wait for ever.
      const wasWaiting = await redisAnswerWithin(
        signals.stop(this.id, this.model, true, this.queueJobId),
        stopDeadlineMs,
      );
      if (wasWaiting) this.forget();
    } catch (error) {
      log.warn("could not signal a cancellation", { jobId: this.id, error: messageOf(error) });
    }
  }

  /** The one way out: applies the end to the record, then forgets the job and its Redis keys. */
  #end(apply: (record: JobRecord) => void): void {
    if (this.#phase === "ended") return;
    apply(this.record);
    this.#phase = "ended";
    this.#replies.close();
    clearTimeout(this.#timer);
    const { persistence, onEnded, log } = this.#context;
    onEnded(this);
    persistence.saveEnded(this).catch((error: unknown) =>
      log.warn("could not record a job's end in Redis", {
        jobId: this.id,
        error: messageOf(error),
      }),
    );
    log.info("job ended", {
      jobId: this.id,
      client: this.record.client,
      status: this.record.status,
      code: this.record.error?.code,
      chunks: this.record.chunks.length,
    });
  }
}

/** What the caller of a job still running when the orchestrator stops sees (status `CANCELLED`). */
const shutdownCancelError = new InternalError("the orchestrator shut down before the job finished");
