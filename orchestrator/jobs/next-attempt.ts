import type { KeyRing } from "../../shared/crypto/index.js";
import type { Logger } from "../../shared/log.js";
import { type ContinuationData, type JobPayload, sealJson } from "../../shared/protocol/index.js";

/** A lost job's next attempt, as queued and as told (see `TrackedJob.lost`). */
export interface NextAttempt {
  jobId: string;
  model: string;
  attempt: number;
  /** Where it goes on from; absent: it runs again from its prompt (it had replied nothing). */
  continuation: ContinuationData | undefined;
}

/**
 * The payload of a job's next attempt: the first one's, with the job's id, the attempt and, for a
 * continuation, its tokens and next seq sealed (never in clear in Redis).
 */
export function nextAttemptPayload(
  payload: JobPayload,
  next: NextAttempt,
  keyRing: KeyRing,
): JobPayload {
  const { continuation: _earlier, ...first } = payload;
  return {
    ...first,
    jobId: next.jobId,
    attempt: next.attempt,
    ...(next.continuation === undefined
      ? {}
      : { continuation: sealJson(keyRing, next.continuation) }),
  };
}

/** Says where a lost job went: run again, or continued (counted by `how`, logged with its seq). */
export function reportNextAttempt(
  next: NextAttempt,
  why: Record<string, unknown>,
  log: Logger,
  metrics: { jobRecovered(model: string, how: "requeued" | "continued"): void } | undefined,
): void {
  const { jobId, attempt, continuation } = next;
  if (continuation === undefined) {
    metrics?.jobRecovered(next.model, "requeued");
    log.warn("job queued again: its gpu-worker was lost before it replied", {
      jobId,
      attempt,
      ...why,
    });
    return;
  }
  metrics?.jobRecovered(next.model, "continued");
  log.warn("job continues on another gpu-worker: its gpu-worker was lost", {
    jobId,
    attempt,
    fromSeq: continuation.seq,
    deliveredTokens: continuation.tokens.length,
    ...why,
  });
}
