import type { FastifyReply } from "fastify";
import { overloadStatusOf } from "../../shared/errors/index.js";
import type { JobRecord } from "../jobs/job-record.js";

/**
 * A job refused for overload (`QUEUE_FULL`, `MODEL_UNAVAILABLE`, `REDIS_UNAVAILABLE`) is answered
 * with its HTTP status (429 or 503) and `Retry-After`, its body still RunPod's; any other job,
 * failed ones included, with 200 as RunPod's API does.
 */
export function setOverloadStatus(reply: FastifyReply, record: JobRecord): void {
  const code = record.status === "FAILED" ? record.error?.code : undefined;
  const status = code === undefined ? undefined : overloadStatusOf(code);
  if (status === undefined) return;
  reply.code(status);
  if (record.retryAfterSeconds !== undefined) {
    reply.header("retry-after", String(record.retryAfterSeconds));
  }
}
