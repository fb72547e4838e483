import { type Job, UnrecoverableError } from "bullmq";
import type { KeyRing } from "../../shared/crypto/index.js";
import { InternalError, toErrorInfo, WorkerLostError } from "../../shared/errors/index.js";
import type { Logger } from "../../shared/log.js";
import {
  type ContinuationData,
  continuationDataSchema,
  generationTaskSchema,
  type JobMetadata,
  type JobResult,
  type JobReturnValue,
  jobPayloadSchema,
  openJson,
} from "../../shared/protocol/index.js";
import type { WorkerMetrics } from "../metrics/worker-metrics.js";
import type { ModelPool } from "../pool/model-pool.js";
import type { ReplyPublisher } from "../publish/reply-publisher.js";
import type { Cancellations } from "./cancellations.js";

export interface JobProcessorOptions {
  pool: ModelPool;
  publisher: ReplyPublisher;
  cancellations: Cancellations;
  keyRing: KeyRing;
  /** When set, the jobs' sequences, token counts and run times are counted. */
  metrics?: WorkerMetrics;
  log: Logger;
  /** Told when a job starts on the model, and when it ends (the scheduler's use and idle times). */
  onJobStarted?: () => void;
  onJobEnded?: () => void;
  /** How long a job queued at `enqueuedAt` (epoch ms) waited for the model to load (`load_ms`). */
  loadMs?: (enqueuedAt: number) => number;
}

/**
 * The BullMQ processor of one model's queue, and the one place where failures become queue
 * behaviour: every job ends with a terminal reply to its orchestrator (`done` or `error`), a
 * failure is never retried (`UnrecoverableError`: half-streamed text cannot be taken back), and
 * the failed reason is the `{code, message}` JSON the caller will see. A job is claimed (its owner
 * key, see `shared/registry/job-owner.ts`) before it runs; one that was taken from this gpu-worker
 * meanwhile is stopped and gets no reply at all.
 */
export function createJobProcessor(options: JobProcessorOptions) {
  const { pool, publisher, cancellations, keyRing, metrics, log, onJobStarted, onJobEnded } =
    options;
  // Three parameters: BullMQ then hands each job an abort signal (`lockSignal`), which
  // `model-worker.ts` fires when the job's lock could not be renewed.
  return async (
    job: Job,
    _token: string | undefined,
    lockSignal: AbortSignal | undefined,
  ): Promise<JobReturnValue> => {
    const startedAt = performance.now();
    const payload = jobPayloadSchema.safeParse(job.data);
    // A job queued again after its gpu-worker was lost has a BullMQ id of its own.
    const jobId = (payload.success ? payload.data.jobId : undefined) ?? job.id ?? "";
    if (!payload.success || jobId === "") {
      // Without a reply channel nobody can be told; the failed event still reaches the orchestrator.
      throw new UnrecoverableError(
        JSON.stringify(new InternalError("the job's data is not a job of this project").toInfo()),
      );
    }
    const attempt = payload.data.attempt ?? Math.max(1, job.attemptsStarted);
    onJobStarted?.();
    const loadMs = Math.round(options.loadMs?.(job.timestamp) ?? 0);
    const continuation = openContinuation(keyRing, payload.data.continuation);
    const replies = publisher.forJob(jobId, payload.data.replyTo, attempt, continuation?.seq ?? 0);
    // One controller stops the generation: a cancel, or the job found lost (a reply refused, the
    // lock gone). Not `AbortSignal.any`: Node keeps a composite signal with an abort listener
    // reachable until it aborts, and most jobs never abort, so every finished job's signal, hooks
    // and replies stayed in the heap (the soak's growth, see `npm run bench -- soak`).
    const stop = new AbortController();
    cancellations.register(jobId, stop);
    replies.onLost(() => stop.abort());
    const onLockLost = () => replies.abandon();
    if (lockSignal?.aborted) onLockLost();
    lockSignal?.addEventListener("abort", onLockLost, { once: true });
    const { signal } = stop;
    // The sealed task leaves Redis as soon as the job is taken: a finished job kept for the
    // dashboard holds metadata only. Written beside the generation, once it is under way.
    const queueMs = Math.max(0, (job.processedOn ?? Date.now()) - job.timestamp);
    const metadata = (fields: Omit<JobMetadata, "v" | "model" | "queueMs">): Promise<void> =>
      job
        .updateData({
          v: 1,
          model: pool.name,
          queueMs,
          ...(payload.data.client === undefined ? {} : { client: payload.data.client }),
          ...fields,
        } satisfies JobMetadata)
        .catch((error: Error) =>
          log.warn("could not replace a job's data by its metadata", {
            jobId,
            error: error.message,
          }),
        );
    let stripped = Promise.resolve();
    let release = metrics?.sequenceTaken(pool.name);
    // The claim goes to Redis first and the generation starts beside it, not after it: the
    // replies travel on the same connection behind the claim and are fenced by it, so none is
    // written unless the claim took. A claim refused marks the replies lost, which stops the
    // generation (`replies.onLost`); a claim that failed stops it too.
    const claiming = replies.claim();
    claiming.catch(() => stop.abort());
    try {
      const task = openJson(keyRing, payload.data.task, generationTaskSchema, "the job's task");
      if (task.sampling.n !== undefined && release !== undefined) {
        // Its choices take a sequence each.
        release();
        release = metrics?.sequenceTaken(pool.name, task.sampling.n);
      }
      if (continuation !== undefined) {
        log.info("job continuing: its earlier gpu-worker was lost", {
          jobId,
          model: pool.name,
          attempt,
          fromSeq: continuation.seq,
          deliveredTokens: continuation.tokens.length,
        });
      }
      const running = pool.run(jobId, task, {
        signal,
        ...(continuation === undefined ? {} : { continuation: { tokens: continuation.tokens } }),
        onText: (piece, extras) => replies.text(piece, extras),
        onStarted: (thread, sequencesInUse) =>
          log.debug("job generating", { jobId, model: pool.name, thread, sequencesInUse }),
      });
      stripped = metadata({ status: "active" });
      const result = await running;
      if (!(await claiming) || replies.lost) throw new WorkerLostError();
      const runMs = Math.round(performance.now() - startedAt);
      // Logged before the terminal reply is written: how the generation ended is known even
      // when Redis cannot take the reply.
      log.info("job finished", {
        jobId,
        model: pool.name,
        finishReason: result.finishReason,
        promptTokens: result.promptTokens,
        cachedTokens: result.cachedTokens,
        completionTokens: result.completionTokens,
        runMs,
      });
      release?.();
      await replies.end({ kind: "done", ...result, runMs, loadMs });
      // The seed, the vectors and the choices go to the caller only (sealed), not into the job's
      // plain metadata.
      const { seed: _seed, embeddings: _embeddings, choices: _choices, ...counts } = result;
      const jobResult: JobResult = { ...counts, runMs };
      // A continuation reports the tokens the lost attempt delivered too; this gpu-worker's metrics
      // count what it generated.
      const replayed = continuation?.tokens.length ?? 0;
      metrics?.jobCompleted(pool.name, {
        ...jobResult,
        completionTokens: Math.max(0, jobResult.completionTokens - replayed),
      });
      await stripped;
      stripped = metadata({
        status: result.finishReason === "cancelled" ? "cancelled" : "completed",
        ...jobResult,
      });
      await stripped;
      return jobResult;
    } catch (error) {
      release?.();
      // Whether this gpu-worker owns the job at all is known once the claim has answered.
      await claiming.catch(() => {});
      if (replies.lost) {
        // Taken over (queued again or failed by the orchestrator): nothing more is written.
        log.warn("job lost: stopped, nothing more written for it", {
          jobId,
          model: pool.name,
          attempt,
        });
        metrics?.jobFailed(pool.name);
        throw new UnrecoverableError(JSON.stringify(new WorkerLostError().toInfo()));
      }
      const info = toErrorInfo(error);
      log.warn("job failed", { jobId, model: pool.name, code: info.code });
      metrics?.jobFailed(pool.name);
      await replies.fail(info);
      await stripped;
      await metadata({
        status: "failed",
        code: info.code,
        runMs: Math.round(performance.now() - startedAt),
      });
      throw new UnrecoverableError(JSON.stringify(info));
    } finally {
      release?.();
      lockSignal?.removeEventListener("abort", onLockLost);
      cancellations.unregister(jobId);
      onJobEnded?.();
    }
  };
}

/**
 * A payload's sealed continuation, opened. One that cannot be opened fails the job at once,
 * without a reply (its numbering is unknown); the failed event still reaches the orchestrator.
 */
function openContinuation(
  keyRing: KeyRing,
  sealed: string | undefined,
): ContinuationData | undefined {
  if (sealed === undefined) return undefined;
  try {
    return openJson(keyRing, sealed, continuationDataSchema, "the job's continuation");
  } catch (error) {
    throw new UnrecoverableError(JSON.stringify(toErrorInfo(error)));
  }
}
