/**
 * What can go wrong for a caller of the pool, one class per exit status of the reference client.
 * Messages name URLs, statuses and error codes; never a request body, prompt text or a key.
 */

/** Why the client stopped, as its exit status. */
export const ExitCode = {
  completed: 0,
  jobFailed: 1,
  usage: 2,
  connection: 3,
  interrupted: 130,
} as const;

export type ExitCode = (typeof ExitCode)[keyof typeof ExitCode];

/** Base class: every client error knows the exit status it stands for. */
export abstract class ClientError extends Error {
  abstract readonly exitCode: ExitCode;

  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** Bad command line, or no usable key: nothing was sent. */
export class UsageError extends ClientError {
  readonly exitCode = ExitCode.usage;
  /** Whether `--help` would help: `false` for a missing key or file, say. */
  readonly pointToHelp: boolean;

  constructor(message: string, options?: { cause?: unknown; pointToHelp?: boolean }) {
    super(message, options);
    this.pointToHelp = options?.pointToHelp ?? true;
  }
}

/**
 * The pool could not be reached, answered with an HTTP error, or answered something that is not
 * the RunPod API. `status` is `undefined` when there was no HTTP answer at all.
 */
export class ConnectionError extends ClientError {
  readonly exitCode = ExitCode.connection;

  /**
   * @param url The URL called (without query), for the message.
   * @param status The HTTP status, when there was an answer.
   * @param detail What went wrong: the server's `error` text, or the network failure.
   */
  constructor(
    readonly url: string,
    readonly status: number | undefined,
    detail: string,
    options?: { cause?: unknown },
  ) {
    super(`${url}: ${status === undefined ? "" : `HTTP ${status}: `}${detail}`, options);
  }
}

/**
 * The job ended `FAILED`, `TIMED_OUT` or `CANCELLED`. `code` is the pool's error code (such as
 * `DECRYPT_FAILED`) when the server gave one, else the status itself.
 */
export class JobFailedError extends ClientError {
  readonly exitCode = ExitCode.jobFailed;

  constructor(
    readonly jobId: string,
    readonly status: string,
    readonly code: string,
    readonly detail: string,
    /** For a job refused for overload: the pool's `Retry-After`, in seconds. */
    readonly retryAfterSeconds?: number,
  ) {
    super(`${code}: ${detail}`);
  }
}

/** The caller aborted (Ctrl-C) while waiting for the pool. */
export class InterruptedError extends ClientError {
  readonly exitCode = ExitCode.interrupted;

  constructor() {
    super("interrupted");
  }
}
