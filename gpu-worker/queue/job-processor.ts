import { type Job, UnrecoverableError } from "bullmq";
import type { KeyRing } from "../../shared/crypto/index.js";
import { InternalError, toErrorInfo } from "../../shared/errors/index.js";
import type { Logger } from "../../shared/log.js";
import {
  generationTaskSchema,
  type JobResult,
  type JobReturnValue,
  jobPayloadSchema,
  openJson,
  sealJson,
} from "../../shared/protocol/index.js";
import type { ModelPool } from "../pool/model-pool.js";
import type { ReplyPublisher } from "../publish/reply-publisher.js";
import type { Cancellations } from "./cancellations.js";

export interface JobProcessorOptions {
  pool: ModelPool;
  publisher: ReplyPublisher;
  cancellations: Cancellations;
  keyRing: KeyRing;
  log: Logger;
}

/**
 * The BullMQ processor of one model's queue, and the one place where failures become queue
 * behaviour: every job ends with a terminal reply to its orchestrator (`done` or `error`), a
 * failure is never retried (`UnrecoverableError`: half-streamed text cannot be taken back), and
 * the failed reason is the `{code, message}` JSON the caller will see.
 */
export function createJobProcessor(options: JobProcessorOptions) {
  const { pool, publisher, cancellations, keyRing, log } = options;
  return async (job: Job): Promise<JobReturnValue> => {
    const startedAt = performance.now();
    const jobId = job.id ?? "";
    const payload = jobPayloadSchema.safeParse(job.data);
    if (!payload.success || jobId === "") {
      // Without a reply channel nobody can be told; the failed event still reaches the orchestrator.
      throw new UnrecoverableError(
        JSON.stringify(new InternalError("the job's data is not a job of this project").toInfo()),
      );
    }
    const replies = publisher.forJob(jobId, payload.data.replyTo, Math.max(1, job.attemptsStarted));
    const { signal } = cancellations.register(jobId);
    try {
      replies.started();
      const task = openJson(keyRing, payload.data.task, generationTaskSchema, "the job's task");
      const result = await pool.run(jobId, task, {
        signal,
        onText: (piece) => replies.text(piece),
        onStarted: (thread, sequencesInUse) =>
          log.debug("job generating", { jobId, model: pool.name, thread, sequencesInUse }),
      });
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
      await replies.end({ kind: "done", ...result, runMs });
      const jobResult: JobResult = { ...result, runMs };
      return { result: sealJson(keyRing, jobResult) };
    } catch (error) {
      const info = toErrorInfo(error);
      log.warn("job failed", { jobId, model: pool.name, code: info.code });
      await replies.fail(info);
      throw new UnrecoverableError(JSON.stringify(info));
    } finally {
      cancellations.unregister(jobId);
    }
  };
}
