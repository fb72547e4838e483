import { z } from "zod";

/**
 * Stable error codes. A code is never reused for another meaning: clients branch on it, and it is
 * the only part of an error that survives Redis and `postMessage` (`instanceof` does not).
 */
export const ErrorCode = {
  /** The job input is not `{"encrypted_input": "<Fernet token>"}`. */
  INVALID_INPUT: "INVALID_INPUT",
  /** The token is not a valid Fernet token for any configured key (tampered, wrong key, ...). */
  DECRYPT_FAILED: "DECRYPT_FAILED",
  /** The decrypted request is not valid UTF-8 JSON of the request schema. */
  INVALID_REQUEST: "INVALID_REQUEST",
  /** The request names a model this deployment does not serve. */
  UNKNOWN_MODEL: "UNKNOWN_MODEL",
  /** The prompt leaves no room for a single generated token in the model's context. */
  PROMPT_TOO_LONG: "PROMPT_TOO_LONG",
  /** The job did not finish within its execution timeout. */
  TIMED_OUT: "TIMED_OUT",
  /** A model file could not be found or loaded. */
  MODEL_LOAD_FAILED: "MODEL_LOAD_FAILED",
  /** Configuration (environment variables) is invalid. */
  CONFIG_INVALID: "CONFIG_INVALID",
  /** Redis could not be reached or started. */
  REDIS_UNAVAILABLE: "REDIS_UNAVAILABLE",
  /** The model's queue already holds its limit of waiting jobs; try again later. */
  QUEUE_FULL: "QUEUE_FULL",
  /** The model is configured, but no live gpu-worker serves it right now; try again later. */
  MODEL_UNAVAILABLE: "MODEL_UNAVAILABLE",
  /** The request token is older than the replay window (`FERNET_TTL_SECONDS`) or from the future. */
  TOKEN_EXPIRED: "TOKEN_EXPIRED",
  /** The request body or the decrypted request is larger than the configured cap. */
  REQUEST_TOO_LARGE: "REQUEST_TOO_LARGE",
  /** The models, as configured, do not fit the memory budget of the machine (the memory plan). */
  INSUFFICIENT_MEMORY: "INSUFFICIENT_MEMORY",
  /**
   * A plaintext OpenAI request (RunPod's `openai_route`, the local `/openai/v1/...` routes) on an
   * endpoint that has not opted in with `ALLOW_PLAINTEXT_OPENAI=true`.
   */
  OPENAI_PLAINTEXT_DISABLED: "OPENAI_PLAINTEXT_DISABLED",
  /**
   * The gpu-worker running the job stopped (died, was paused, lost Redis) before it finished, and
   * the job could not be run again elsewhere (it had already streamed text, or was run twice).
   * Retryable: sending the request again may succeed.
   */
  WORKER_LOST: "WORKER_LOST",
  /** Redis lost the job (it restarted empty, or was flushed) before it ended. */
  JOB_LOST: "JOB_LOST",
  /** Anything else: a bug. The message never carries request data. */
  INTERNAL: "INTERNAL",
} as const;

export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

/** What a caller sees of an error: a stable code and a message free of request data. */
export interface ErrorInfo {
  code: ErrorCode;
  message: string;
}

export const errorCodeSchema = z.enum(Object.values(ErrorCode) as [ErrorCode, ...ErrorCode[]]);

/** An {@link ErrorInfo} read back (from Redis, a reply). */
export const errorInfoSchema = z.object({ code: errorCodeSchema, message: z.string() });

export interface PoolErrorOptions {
  cause?: unknown;
  /** When to try again, in whole seconds (HTTP `Retry-After`), for a refusal under overload. */
  retryAfterSeconds?: number;
}

/**
 * Base class of every error this project raises on purpose. Messages must never contain prompt
 * text, decrypted data, output text or key material: they are shown to callers and logged.
 */
export class PoolError extends Error {
  readonly code: ErrorCode;
  readonly retryAfterSeconds: number | undefined;

  constructor(code: ErrorCode, message: string, options: PoolErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.code = code;
    this.retryAfterSeconds = options.retryAfterSeconds;
  }

  toInfo(): ErrorInfo {
    return { code: this.code, message: this.message };
  }
}

const knownCodes = new Set<string>(Object.values(ErrorCode));

export function isErrorCode(value: unknown): value is ErrorCode {
  return typeof value === "string" && knownCodes.has(value);
}

/**
 * Turns anything thrown into what a caller may see. Errors that are not a {@link PoolError} become
 * `INTERNAL` with a generic message naming only the error's class, because their text may echo
 * request data.
 */
export function toErrorInfo(error: unknown): ErrorInfo {
  if (error instanceof PoolError) return error.toInfo();
  const kind = error instanceof Error && /^\w{1,40}$/.test(error.name) ? ` (${error.name})` : "";
  return { code: ErrorCode.INTERNAL, message: `internal error${kind}` };
}
