import { ErrorCode, PoolError, type PoolErrorOptions } from "./pool-error.js";

export class InvalidInputError extends PoolError {
  constructor(message: string, options?: PoolErrorOptions) {
    super(ErrorCode.INVALID_INPUT, message, options);
  }
}

export class DecryptFailedError extends PoolError {
  constructor(
    message = "the encrypted input could not be decrypted with the configured key",
    options?: PoolErrorOptions,
  ) {
    super(ErrorCode.DECRYPT_FAILED, message, options);
  }
}

export class InvalidRequestError extends PoolError {
  constructor(message: string, options?: PoolErrorOptions) {
    super(ErrorCode.INVALID_REQUEST, message, options);
  }
}

export class UnknownModelError extends PoolError {
  constructor(message: string, options?: PoolErrorOptions) {
    super(ErrorCode.UNKNOWN_MODEL, message, options);
  }
}

export class PromptTooLongError extends PoolError {
  constructor(message: string, options?: PoolErrorOptions) {
    super(ErrorCode.PROMPT_TOO_LONG, message, options);
  }
}

export class TimedOutError extends PoolError {
  constructor(message: string, options?: PoolErrorOptions) {
    super(ErrorCode.TIMED_OUT, message, options);
  }
}

export class ModelLoadError extends PoolError {
  constructor(message: string, options?: PoolErrorOptions) {
    super(ErrorCode.MODEL_LOAD_FAILED, message, options);
  }
}

export class ConfigError extends PoolError {
  constructor(message: string, options?: PoolErrorOptions) {
    super(ErrorCode.CONFIG_INVALID, message, options);
  }
}

export class RedisUnavailableError extends PoolError {
  constructor(message: string, options?: PoolErrorOptions) {
    super(ErrorCode.REDIS_UNAVAILABLE, message, options);
  }
}

export class QueueFullError extends PoolError {
  constructor(message: string, options?: PoolErrorOptions) {
    super(ErrorCode.QUEUE_FULL, message, options);
  }
}

export class ModelUnavailableError extends PoolError {
  constructor(message: string, options?: PoolErrorOptions) {
    super(ErrorCode.MODEL_UNAVAILABLE, message, options);
  }
}

export class TokenExpiredError extends PoolError {
  constructor(message: string, options?: PoolErrorOptions) {
    super(ErrorCode.TOKEN_EXPIRED, message, options);
  }
}

export class RequestTooLargeError extends PoolError {
  constructor(message: string, options?: PoolErrorOptions) {
    super(ErrorCode.REQUEST_TOO_LARGE, message, options);
  }
}

export class InsufficientMemoryError extends PoolError {
  constructor(message: string, options?: PoolErrorOptions) {
    super(ErrorCode.INSUFFICIENT_MEMORY, message, options);
  }
}

export class OpenAiPlaintextDisabledError extends PoolError {
  constructor(
    message = "plaintext OpenAI requests are off on this endpoint: they would travel and be stored unencrypted. " +
      "Run the encrypting proxy on your machine instead (npm run proxy -- --url <endpoint URL>; any OpenAI client then works through it, end-to-end encrypted), " +
      "or, as the operator, accept plaintext with ALLOW_PLAINTEXT_OPENAI=true",
    options?: PoolErrorOptions,
  ) {
    super(ErrorCode.OPENAI_PLAINTEXT_DISABLED, message, options);
  }
}

export class WorkerLostError extends PoolError {
  constructor(
    message = "the gpu-worker running this job stopped before it finished",
    options?: PoolErrorOptions,
  ) {
    super(ErrorCode.WORKER_LOST, message, options);
  }
}

export class JobLostError extends PoolError {
  constructor(
    message = "Redis lost this job (it restarted without its data, or was flushed): submit it again",
    options?: PoolErrorOptions,
  ) {
    super(ErrorCode.JOB_LOST, message, options);
  }
}

export class InternalError extends PoolError {
  constructor(message: string, options?: PoolErrorOptions) {
    super(ErrorCode.INTERNAL, message, options);
  }
}
