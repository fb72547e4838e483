import type { KeyRing } from "../crypto/index.js";
import type { ModelEntry } from "../models/model-spec.js";
import type { ServedModel } from "../models/served-models.js";
import type { ClusterTarget, SentinelTarget } from "../redis/redis-target.js";

export type RunMode = "local" | "runpod";
export type LogLevel = "debug" | "info" | "warn" | "error";
/** `runpod`: RunPod's JSON lines `{"requestId", "message", "level"}` (when `RUNPOD_ENDPOINT_ID` is set). */
export type LogFormat = "text" | "json" | "runpod";
export type GpuChoice = "auto" | "cuda" | "vulkan" | "metal" | false;
/** When stream chunks are encrypted: for every job, for jobs that ask (`encrypt_output`), never. */
export type EncryptOutputMode = "always" | "request" | "never";

/**
 * What the RunPod platform injects into a serverless worker (see `shared/docs/runpod-protocol.md`
 * §2). URL fields are templates: `$ID` and `$RUNPOD_POD_ID` are filled in per call.
 */
export interface RunpodConfig {
  /** `RUNPOD_WEBHOOK_GET_JOB`: the job-take URL template. */
  readonly getJobUrl: string;
  /** `RUNPOD_WEBHOOK_POST_OUTPUT`: the final-result URL template. */
  readonly postOutputUrl: string;
  /** `RUNPOD_WEBHOOK_POST_STREAM`: the stream-chunk URL template; `undefined`: no stream posts. */
  readonly postStreamUrl: string | undefined;
  /** `RUNPOD_WEBHOOK_PING`: the heartbeat URL template; `undefined`: no heartbeat. */
  readonly pingUrl: string | undefined;
  /** `RUNPOD_AI_API_KEY`: sent raw as `Authorization` on every call. */
  readonly apiKey: string | undefined;
  /** `RUNPOD_POD_ID`: this worker's id (a random UUID when unset, as runpod-python does). */
  readonly podId: string;
  /** `RUNPOD_PING_INTERVAL`: heartbeat period in milliseconds (default 10000). */
  readonly pingIntervalMs: number;
}

/**
 * `DASHBOARD_RETENTION`: how many finished jobs of each model queue stay visible (metadata only),
 * and for how long. `count: 0` removes finished jobs at once.
 */
export interface DashboardRetention {
  /** Finished jobs kept per queue and per outcome (completed, failed). */
  readonly count: number;
  /** Seconds a finished job is kept at most. */
  readonly ageSeconds: number;
}

/** Everything the processes read from the environment, parsed once at startup and frozen. */
export interface Config {
  /** `runpod` when `RUNPOD_WEBHOOK_GET_JOB` is set, else `local`. */
  readonly mode: RunMode;
  /** The platform's settings in `runpod` mode, else `undefined`. */
  readonly runpod: RunpodConfig | undefined;
  /**
   * `MAX_CONCURRENCY`: jobs the RunPod job loop holds at once (taken and not yet posted);
   * `undefined` = what the served models can run at once (see `servedSlots`).
   */
  readonly maxConcurrency: number | undefined;
  /**
   * `STREAM_POST_WINDOW_MS`: in RunPod mode, the least time between two stream posts of a job;
   * chunks produced meanwhile share one post (default 50; `0` = post as soon as possible).
   */
  readonly streamPostWindowMs: number;
  /** Models from `MODELS`; empty when unset (the built-in demo model is served then). */
  readonly models: readonly ModelEntry[];
  /**
   * The models served (`MODELS`, or the demo model when it is unset), each with the settings it
   * runs with: its `MODELS` overrides over the global variables. Resolved here, once.
   */
  readonly served: readonly ServedModel[];
  /** Keys from `ENCRYPTION_KEY`; `undefined` when unset (local mode then uses a key file). */
  readonly keyRing: KeyRing | undefined;
  /**
   * `CLIENT_KEYS_FILE`: the named clients' keys (one client a line, `name=key[,older key…]`,
   * mode 0600); `undefined` = only the anonymous client (`ENCRYPTION_KEY`). Re-read on `SIGHUP`
   * and when the file changes.
   */
  readonly clientKeysFile: string | undefined;
  /**
   * `CLIENT_METRICS_LABEL` (default on): metrics count jobs and tokens per client name (a
   * `client` label); off drops the label.
   */
  readonly clientMetricsLabel: boolean;
  /** `HF_TOKEN`, for gated Hugging Face repositories. */
  readonly hfToken: string | undefined;
  /** `HF_HOME`: the Hugging Face cache root. */
  readonly hfHome: string;
  /** `HF_HUB_CACHE` (else `HUGGINGFACE_HUB_CACHE`, else `$HF_HOME/hub`): where models are cached. */
  readonly hfHubCache: string;
  /** `HF_ENDPOINT`: the Hub's base URL, without a trailing slash. */
  readonly hfEndpoint: string;
  /** `HF_HUB_OFFLINE`: never call the Hub; serve models from the cache only. */
  readonly hfOffline: boolean;
  /** `HF_QUANT`: quantizations to pick for an `owner/repo` spec, most preferred first. */
  readonly hfQuant: readonly string[];
  /** `GPU_MEMORY_UTILIZATION`: share of GPU memory the models may use, in (0, 1]. */
  readonly gpuMemoryUtilization: number;
  /**
   * `MEMORY_BUDGET_MB`: the memory the models may use, in MiB, instead of
   * `GPU_MEMORY_UTILIZATION` × the GPU's memory (or RAM without a GPU).
   */
  readonly memoryBudgetMb: number | undefined;
  /** `MAX_QUEUED_JOBS`: jobs that may wait in one model's queue; more are refused `QUEUE_FULL`. */
  readonly maxQueuedJobs: number;
  /**
   * `REGISTRY_TTL_MS`: a gpu-worker's entry in the model registry lapses this long after its
   * last heartbeat (it beats every third of it).
   */
  readonly registryTtlMs: number;
  /** `LLAMA_GPU`: llama.cpp backend, `false` for CPU only. */
  readonly gpu: GpuChoice;
  /** `REDIS_URL`; `undefined` lets a local start find or start a Redis server. */
  readonly redisUrl: string | undefined;
  /**
   * `REDIS_SENTINELS` + `REDIS_SENTINEL_NAME`, or `REDIS_CLUSTER_NODES` (with `REDIS_USERNAME`,
   * `REDIS_PASSWORD`, `REDIS_TLS`, `REDIS_SENTINEL_PASSWORD`): a Sentinel-managed primary or a
   * Redis Cluster instead of `REDIS_URL`'s one server; `undefined` for one server.
   */
  readonly redisTopology: SentinelTarget | ClusterTarget | undefined;
  /**
   * `REDIS_CONNECT_TIMEOUT_MS`: at start, how long a process waits for the Redis of `REDIS_URL` to
   * answer before it gives up (exit 1), in ms; default 5000. A Redis that answers but refuses the
   * connection (a wrong password, a database it does not have) stops it at once (exit 2). Outages
   * after the start are waited out.
   */
  readonly redisConnectTimeoutMs: number;
  /** `REDIS_PREFIX`: the prefix of every Redis key and channel this deployment uses. */
  readonly redisPrefix: string;
  /** `HOST` and `PORT` of the local API. */
  readonly host: string;
  readonly port: number;
  /** `DASHBOARD_PORT`: port of the admin queue dashboard (on `HOST`). */
  readonly dashboardPort: number;
  /**
   * `DASHBOARD_RETENTION`: finished jobs kept for the dashboard, as `count=N,age=SECONDS`
   * (default `count=1000,age=3600`; `off`, `count=0` or `age=0` = removed at once).
   */
  readonly dashboardRetention: DashboardRetention;
  /**
   * `METRICS_PORT`: the port of the gpu-worker's Prometheus `/metrics` (on `HOST`); `undefined`
   * (unset) = no metrics server on the gpu-worker. The orchestrator serves `/metrics` on `PORT`.
   */
  readonly metricsPort: number | undefined;
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
  /**
   * `MAX_JOB_ATTEMPTS`: a job runs at most this often: once, then again (before it replied) or on
   * from the text delivered (a continuation) each time its gpu-worker is lost. RunPod mode keeps
   * its own rule (once more, before a reply only).
   */
  readonly maxJobAttempts: number;
  /**
   * `ALLOW_PLAINTEXT_OPENAI`: serve plaintext OpenAI requests (RunPod's `openai_route` jobs, the
   * local `/openai/v1/...` routes). Off by default: they are refused with `OPENAI_PLAINTEXT_DISABLED`.
   */
  readonly allowPlaintextOpenai: boolean;
  /** `RESULT_RETENTION_MS`: how long the local API keeps finished jobs for `/status`. */
  readonly resultRetentionMs: number;
  /**
   * `PROMPT_CACHE`: keep each sequence's tokens between jobs and give a job the free sequence that
   * shares the longest prefix with its prompt, so only the rest is evaluated (default on; `off`:
   * every job starts on an empty sequence).
   */
  readonly promptCache: boolean;
  /**
   * `DELTA_WINDOW_MS`: tokens produced within this window are sent as one delta; the window grows
   * with the jobs on a model thread (see `gpu-worker/thread/text-windows.ts`).
   */
  readonly deltaWindowMs: number;
  /** `SHUTDOWN_TIMEOUT_MS`: on SIGTERM, running jobs get this long to finish before being aborted. */
  readonly shutdownTimeoutMs: number;
  /**
   * `KEEP_ALIVE` (default 5 min): a loaded model idle this long (no job running or waiting for it
   * on its gpu-worker) is unloaded; 0 unloads it as soon as it is idle, -1 never. In ms.
   */
  readonly keepAliveMs: number;
  /**
   * `MAX_SWAP_WAIT_MS` (default 30 s): how long the oldest job of a model that no gpu-worker has
   * loaded may wait before a model with jobs of its own (none running) is unloaded to make room.
   */
  readonly maxSwapWaitMs: number;
  /**
   * `WARM_THREADS` (default 1): model threads a gpu-worker keeps started, their backend up and no
   * model, so a model's load does not wait for a thread to start.
   */
  readonly warmThreads: number;
  /** `DATA_DIR`: local state (the generated key file, the demo model). */
  readonly dataDir: string;
  readonly logLevel: LogLevel;
  readonly logFormat: LogFormat;
}
