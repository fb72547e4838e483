import { type ErrorInfo, isErrorCode, WorkerLostError } from "../../shared/errors/index.js";
import { RedisNames } from "../../shared/naming.js";

/*
 * What BullMQ says of a job's attempts: which tracked job an attempt's id belongs to, and the
 * failure a failed attempt carries.
 */

/**
 * The tracked job a BullMQ job id is an attempt of, when that attempt is the job's current one;
 * `undefined` for an unknown job, and for an attempt superseded after its gpu-worker was lost
 * (BullMQ fails it later: that failure is not the job's).
 */
export function jobOfQueueJob<T extends { readonly attempt: number }>(
  jobs: ReadonlyMap<string, T>,
  queueJobId: string,
): T | undefined {
  const { jobId, attempt } = RedisNames.parseQueueJobId(queueJobId);
  const job = jobs.get(jobId);
  return job?.attempt === attempt ? job : undefined;
}

/**
 * The error a failed BullMQ attempt carries: ours (`{code, message}` JSON, set by the gpu-worker),
 * else BullMQ's own reason (a stalled job: its gpu-worker stopped), read as `WORKER_LOST`.
 */
export function parseFailedReason(reason: string): ErrorInfo {
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
