import type { KeyRing } from "../crypto/index.js";
import type { ModelEntry } from "../models/model-spec.js";

export type RunMode = "local" | "runpod";
export type LogLevel = "debug" | "info" | "warn" | "error";
export type LogFormat = "text" | "json";
export type GpuChoice = "auto" | "cuda" | "vulkan" | "metal" | false;
/** When stream chunks are encrypted: for every job, for jobs that ask (`encrypt_output`), never. */
export type EncryptOutputMode = "always" | "request" | "never";

/** Everything the processes read from the environment, parsed once at startup and frozen. */
export interface Config {
  /** `runpod` when `RUNPOD_WEBHOOK_GET_JOB` is set, else `local`. */
  readonly mode: RunMode;
  /** Models from `MODELS`; empty when unset (the built-in demo model is served then). */
  readonly models: readonly ModelEntry[];
  /** Keys from `ENCRYPTION_KEY`; `undefined` when unset (local mode then uses a key file). */
  readonly keyRing: KeyRing | undefined;
  /** `HF_TOKEN`, for gated Hugging Face repositories. */
  readonly hfToken: string | undefined;
  /** `HF_HOME`: the Hugging Face cache root. */
  readonly hfHome: string;
  /** `GPU_MEMORY_UTILIZATION`: share of GPU memory the models may use, in (0, 1]. */
  readonly gpuMemoryUtilization: number;
  /** `LLAMA_GPU`: llama.cpp backend, `false` for CPU only. */
  readonly gpu: GpuChoice;
  /** `REDIS_URL`; `undefined` lets a local start find or start a Redis server. */
  readonly redisUrl: string | undefined;
  /** `REDIS_PREFIX`: the prefix of every Redis key and channel this deployment uses. */
  readonly redisPrefix: string;
  /** `HOST` and `PORT` of the local API. */
  readonly host: string;
  readonly port: number;
  /** `API_KEY`: when set, the local API requires `Authorization: Bearer <API_KEY>`. */
  readonly apiKey: string | undefined;
  /** `MODEL_THREADS`: worker threads per model, each holding the model loaded. */
  readonly modelThreads: number;
  /** `MODEL_SEQUENCES`: context sequences per thread, i.e. jobs one thread runs at once. */
  readonly modelSequences: number;
  /** `LLAMA_THREADS`: llama.cpp CPU threads per worker thread. */
  readonly llamaThreads: number;
  /** `CONTEXT_SIZE`: tokens per sequence; `undefined` = the model's training size, at most 4096. */
  readonly contextSize: number | undefined;
  /** `MAX_TOKENS_DEFAULT`: `max_tokens` when a request gives none. */
  readonly defaultMaxTokens: number;
  /** `MAX_TOKENS_LIMIT`: the largest `max_tokens` a request may ask for. */
  readonly maxTokensLimit: number;
  /**
   * `MAX_REQUEST_BYTES`: the largest HTTP body `/run` and `/runsync` take (larger: HTTP 413), and
   * the largest `encrypted_input` token admitted (larger: `REQUEST_TOO_LARGE`, before decrypting).
   */
  readonly maxRequestBytes: number;
  /**
   * `FERNET_TTL_SECONDS`: the replay window. A request token older than this, or more than 60 s
   * in the future, is refused with `TOKEN_EXPIRED`; `0` turns the check off.
   */
  readonly fernetTtlSeconds: number;
  /** `ENCRYPT_OUTPUT`: which jobs get their stream chunks encrypted with the first key. */
  readonly encryptOutput: EncryptOutputMode;
  /** `JOB_TIMEOUT_MS`: a job not finished this long after it was accepted ends `TIMED_OUT`. */
  readonly jobTimeoutMs: number;
  /**
   * `JOB_LOCK_MS`: a gpu-worker renews the lock of each job it runs; a job whose lock lapsed this
   * long (its gpu-worker died) is failed by the next gpu-worker's check, which runs as often.
   */
  readonly jobLockMs: number;
  /** `RESULT_RETENTION_MS`: how long the local API keeps finished jobs for `/status`. */
  readonly resultRetentionMs: number;
  /** `DELTA_WINDOW_MS`: tokens produced within this window are sent as one delta. */
  readonly deltaWindowMs: number;
  /** `SHUTDOWN_TIMEOUT_MS`: on SIGTERM, running jobs get this long to finish before being aborted. */
  readonly shutdownTimeoutMs: number;
  /** `DATA_DIR`: local state (the generated key file, the demo model). */
  readonly dataDir: string;
  readonly logLevel: LogLevel;
  readonly logFormat: LogFormat;
}
