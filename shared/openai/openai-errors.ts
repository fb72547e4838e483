import { ErrorCode, overloadStatusOf } from "../errors/index.js";

/** An error as OpenAI's API answers it, with the HTTP status to send it with. */
export interface OpenAiErrorAnswer {
  status: number;
  body: { error: { message: string; type: string; param: null; code: string } };
}

/** HTTP status and OpenAI error type per pool error code (and the proxy's own failures). */
const byCode: Record<string, [number, string]> = {
  [ErrorCode.INVALID_INPUT]: [400, "invalid_request_error"],
  [ErrorCode.INVALID_REQUEST]: [400, "invalid_request_error"],
  [ErrorCode.REQUEST_TOO_LARGE]: [413, "invalid_request_error"],
  [ErrorCode.PROMPT_TOO_LONG]: [400, "invalid_request_error"],
  [ErrorCode.UNKNOWN_MODEL]: [404, "invalid_request_error"],
  // Overload: the statuses are the RunPod-shaped routes' (`overloadStatusOf`), with Retry-After.
  [ErrorCode.QUEUE_FULL]: [0, "rate_limit_error"],
  [ErrorCode.MODEL_UNAVAILABLE]: [0, "server_error"],
  [ErrorCode.REDIS_UNAVAILABLE]: [0, "server_error"],
  [ErrorCode.TIMED_OUT]: [504, "server_error"],
  [ErrorCode.OPENAI_PLAINTEXT_DISABLED]: [403, "permission_error"],
  // The proxy's key and the endpoint's differ, or the proxy's clock is off: not the caller's fault.
  [ErrorCode.DECRYPT_FAILED]: [502, "server_error"],
  [ErrorCode.TOKEN_EXPIRED]: [502, "server_error"],
  [ErrorCode.MODEL_LOAD_FAILED]: [503, "server_error"],
  CANCELLED: [499, "server_error"],
  UPSTREAM: [502, "server_error"],
  UNAUTHORIZED: [401, "authentication_error"],
  NOT_FOUND: [404, "invalid_request_error"],
};

/** OpenAI's error answer for a pool error code (unknown codes: 500 `server_error`). */
export function openAiError(code: string, message: string): OpenAiErrorAnswer {
  const [listed, type] = byCode[code] ?? [500, "server_error"];
  const status = overloadStatusOf(code) ?? listed;
  const openAiCode =
    code === ErrorCode.PROMPT_TOO_LONG
      ? "context_length_exceeded"
      : code === ErrorCode.UNKNOWN_MODEL
        ? "model_not_found"
        : code.toLowerCase();
  return { status, body: { error: { message, type, param: null, code: openAiCode } } };
}
