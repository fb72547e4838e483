import { ErrorCode } from "./pool-error.js";

/**
 * The HTTP status of a request refused for overload: the codes that mean "not now, come back
 * later" (with `Retry-After`). Every other refusal keeps RunPod's shape, HTTP 200 with
 * `"status": "FAILED"`, as RunPod's own API answers a job that failed. The one table of these
 * statuses: the RunPod-shaped routes and the OpenAI-shaped ones both read it.
 */
const overloadStatuses: Readonly<Partial<Record<ErrorCode, number>>> = {
  [ErrorCode.QUEUE_FULL]: 429,
  [ErrorCode.MODEL_UNAVAILABLE]: 503,
  [ErrorCode.REDIS_UNAVAILABLE]: 503,
};

/** 429 or 503 for an overload code, else `undefined`. */
export function overloadStatusOf(code: string): number | undefined {
  return overloadStatuses[code as ErrorCode];
}
