import type { AnswerFailure } from "../../shared/openai/index.js";
import type { StreamChunk } from "../../shared/protocol/index.js";
import type { JobRecord } from "../jobs/job-record.js";

/** Thrown by {@link recordChunks} when the job did not complete. */
export class JobEndedError extends Error {
  constructor(readonly failure: AnswerFailure) {
    super(failure.message);
  }
}

/**
 * A plaintext job's chunks as they arrive in its record, until it ends; throws a
 * {@link JobEndedError} with its code when it ended otherwise than `COMPLETED`.
 */
export async function* recordChunks(record: JobRecord): AsyncGenerator<StreamChunk, void> {
  let next = 0;
  for (;;) {
    const chunks = record.chunks;
    while (next < chunks.length) yield chunks[next++] as StreamChunk;
    if (record.terminal) {
      if (record.status === "COMPLETED") return;
      const error = record.error ?? {
        code: record.status,
        message: record.status === "CANCELLED" ? "the job was cancelled" : "the job did not finish",
      };
      throw new JobEndedError({ ...error, retryAfterSeconds: record.retryAfterSeconds });
    }
    await record.waitForChange(30_000);
  }
}

/** What a failure while reading a record's chunks means to an OpenAI caller. */
export function recordFailureOf(error: unknown): AnswerFailure {
  return error instanceof JobEndedError
    ? error.failure
    : { code: "INTERNAL", message: "internal error" };
}
