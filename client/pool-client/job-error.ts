import { JobFailedError } from "./client-errors.js";
import { serverText } from "./server-text.js";

/**
 * The error of a job that ended `status` (anything but `COMPLETED`). The pool puts JSON text
 * `{"code", "message"}` in `error`; anything else (another worker, RunPod's own errors) is shown
 * as it is, under the status as its code.
 */
export function jobFailure(
  jobId: string,
  status: string,
  error: unknown,
  retryAfterSeconds?: number,
): JobFailedError {
  const text = typeof error === "string" ? error : error == null ? "" : JSON.stringify(error);
  const coded = parseCoded(text);
  if (coded !== undefined) {
    return new JobFailedError(jobId, status, coded.code, coded.message, retryAfterSeconds);
  }
  const detail = text === "" ? defaultDetail(status) : serverText(text);
  return new JobFailedError(jobId, status, status, detail);
}

function parseCoded(text: string): { code: string; message: string } | undefined {
  try {
    const parsed: unknown = JSON.parse(text);
    if (typeof parsed !== "object" || parsed === null) return undefined;
    const { code, message } = parsed as Record<string, unknown>;
    if (typeof code !== "string" || !/^[A-Z][A-Z0-9_]{0,63}$/.test(code)) return undefined;
    return { code, message: typeof message === "string" ? serverText(message) : "" };
  } catch {
    return undefined;
  }
}

function defaultDetail(status: string): string {
  if (status === "CANCELLED") return "the job was cancelled";
  if (status === "TIMED_OUT") return "the job did not finish within its execution timeout";
  return "the job failed and the server gave no reason";
}
