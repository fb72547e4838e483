import { randomUUID } from "node:crypto";
import { existsSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { z } from "zod";
import { KeyRing } from "../crypto/index.js";
import { ConfigError } from "../errors/index.js";
import { parseModelsList } from "../models/model-spec.js";
import { resolveServedModels } from "../models/served-models.js";
import { packageRoot } from "../paths.js";
import type { Config, DashboardRetention, GpuChoice, LogFormat, RunpodConfig } from "./config.js";
import {
  type Env,
  readBoolean,
  readDuration,
  readEnum,
  readInt,
  readRaw,
  readVar,
} from "./env-readers.js";
import { readRedisTopology } from "./redis-topology.js";

/** Facts about the machine that defaults depend on; injectable so tests need no real machine. */
export interface ConfigHost {
  cwd: string;
  homeDir: string;
  cpuCount: number;
  runpodVolumeExists: boolean;
  packageRoot: string;
}

function realHost(): ConfigHost {
  return {
    cwd: process.cwd(),
    homeDir: os.homedir(),
    cpuCount: os.availableParallelism(),
    runpodVolumeExists: existsSync("/runpod-volume"),
    packageRoot: packageRoot(),
  };
}

/**
 * Reads and validates every environment variable the project honours. Call it once in an entry
 * point and pass the result down; nothing else reads `process.env`. Throws a {@link ConfigError}
 * whose message names the variable and the rule (and never echoes a secret).
 */
export function loadConfig(env: Env = process.env, host: ConfigHost = realHost()): Config {
  const mode = readRaw(env, "RUNPOD_WEBHOOK_GET_JOB") === undefined ? "local" : "runpod";
  const modelsRaw = readRaw(env, "MODELS");
  const models = modelsRaw === undefined ? [] : parseModelsList(modelsRaw, host.cwd);
  if (modelsRaw !== undefined && models.length === 0) {
    throw new ConfigError("MODELS must name at least one model when set");
  }
  const keyRaw = readRaw(env, "ENCRYPTION_KEY");
  const keyRing = keyRaw === undefined ? undefined : KeyRing.parse(keyRaw, "ENCRYPTION_KEY");
  if (keyRing === undefined && mode === "runpod") {
    throw new ConfigError("ENCRYPTION_KEY must be set when running as a RunPod worker");
  }

  const modelThreads = readInt(env, "MODEL_THREADS", 1, 64) ?? 1;
  const threadCount =
    models.length === 0
      ? modelThreads
      : models.reduce((sum, model) => sum + (model.settings.threads ?? modelThreads), 0);
  // One core stays free for the event loops (Redis, HTTP); the rest is shared by the model threads.
  const defaultLlamaThreads = Math.max(1, Math.floor((host.cpuCount - 1) / threadCount));
  const defaultMaxTokens = readInt(env, "MAX_TOKENS_DEFAULT", 1, 1_000_000) ?? 256;
  const maxTokensLimit = readInt(env, "MAX_TOKENS_LIMIT", 1, 1_000_000) ?? 4096;
  if (defaultMaxTokens > maxTokensLimit) {
    throw new ConfigError(
      `MAX_TOKENS_DEFAULT (${defaultMaxTokens}) must not exceed MAX_TOKENS_LIMIT (${maxTokensLimit})`,
    );
  }

  const hfHome =
    readRaw(env, "HF_HOME") ??
    (host.runpodVolumeExists
      ? "/runpod-volume/huggingface-cache"
      : path.join(host.homeDir, ".cache", "huggingface"));

  const settings: Omit<Config, "served"> = {
    mode,
    runpod: mode === "runpod" ? readRunpod(env) : undefined,
    maxConcurrency: readInt(env, "MAX_CONCURRENCY", 1, 100_000),
    streamPostWindowMs: readInt(env, "STREAM_POST_WINDOW_MS", 0, 10_000) ?? 50,
    models: Object.freeze(models),
    keyRing,
    clientKeysFile: readClientKeysPath(env, host.cwd),
    clientMetricsLabel: readBoolean(env, "CLIENT_METRICS_LABEL") ?? true,
    hfToken: readRaw(env, "HF_TOKEN"),
    hfHome,
    hfHubCache:
      readRaw(env, "HF_HUB_CACHE") ??
      readRaw(env, "HUGGINGFACE_HUB_CACHE") ??
      path.join(hfHome, "hub"),
    hfEndpoint: (
      readVar(
        env,
        "HF_ENDPOINT",
        z.string().regex(/^https?:\/\/[^\s]+$/),
        'be an http:// or https:// URL, e.g. "https://huggingface.co"',
      ) ?? "https://huggingface.co"
    ).replace(/\/+$/, ""),
    hfOffline: readBoolean(env, "HF_HUB_OFFLINE") ?? false,
    hfQuant: Object.freeze(
      readVar(
        env,
        "HF_QUANT",
        z
          .string()
          .regex(/^[A-Za-z0-9_]+(\s*,\s*[A-Za-z0-9_]+)*$/)
          .transform((text) => text.split(",").map((quant) => quant.trim().toUpperCase())),
        "be a quantization name or a comma-separated list of them, e.g. Q4_K_M or Q4_K_M,Q8_0",
      ) ?? ["Q4_K_M"],
    ),
    gpuMemoryUtilization:
      readVar(
        env,
        "GPU_MEMORY_UTILIZATION",
        z
          .string()
          .regex(/^\d*\.?\d+$/)
          .transform(Number)
          .pipe(z.number().gt(0).lte(1)),
        "be a number in (0, 1]",
      ) ?? 0.95,
    memoryBudgetMb: readInt(env, "MEMORY_BUDGET_MB", 1),
    maxQueuedJobs: readInt(env, "MAX_QUEUED_JOBS", 1) ?? 1000,
    registryTtlMs: readInt(env, "REGISTRY_TTL_MS", 1000, 3_600_000) ?? 10_000,
    gpu: readGpu(env),
    redisUrl: readVar(
      env,
      "REDIS_URL",
      z.string().regex(/^(redis|rediss|unix):\/\//),
      'be a URL starting with "redis://", "rediss://" or "unix://"',
      { secret: true },
    ),
    redisTopology: readRedisTopology(env),
    redisConnectTimeoutMs: readInt(env, "REDIS_CONNECT_TIMEOUT_MS", 0, 3_600_000) ?? 5000,
    redisPrefix:
      readVar(
        env,
        "REDIS_PREFIX",
        z.string().regex(/^[A-Za-z0-9_.-]{1,64}$/),
        'be 1-64 characters of letters, digits, "_", "." or "-"',
      ) ?? "llmpool",
    host: readRaw(env, "HOST") ?? "127.0.0.1",
    port: readInt(env, "PORT", 0, 65535) ?? 8000,
    dashboardPort: readInt(env, "DASHBOARD_PORT", 0, 65535) ?? 8001,
    dashboardRetention: readDashboardRetention(env),
    metricsPort: readInt(env, "METRICS_PORT", 0, 65535),
    apiKey: readRaw(env, "API_KEY"),
    modelThreads,
    modelSequences: readInt(env, "MODEL_SEQUENCES", 1, 256) ?? 4,
    llamaThreads: readInt(env, "LLAMA_THREADS", 1, 1024) ?? defaultLlamaThreads,
    contextSize: readInt(env, "CONTEXT_SIZE", 64, 1_048_576),
    defaultMaxTokens,
    maxTokensLimit,
    maxRequestBytes:
      readInt(env, "MAX_REQUEST_BYTES", 1024, 1024 * 1024 * 1024) ?? 10 * 1024 * 1024,
    fernetTtlSeconds: readInt(env, "FERNET_TTL_SECONDS", 0, 365 * 24 * 3600) ?? 3600,
    encryptOutput: readEnum(env, "ENCRYPT_OUTPUT", ["always", "request", "never"]) ?? "request",
    jobTimeoutMs: readInt(env, "JOB_TIMEOUT_MS", 1000) ?? 600_000,
    jobLockMs: readInt(env, "JOB_LOCK_MS", 1000, 600_000) ?? 30_000,
    maxJobAttempts: readInt(env, "MAX_JOB_ATTEMPTS", 1, 100) ?? 3,
    allowPlaintextOpenai: readBoolean(env, "ALLOW_PLAINTEXT_OPENAI") ?? false,
    resultRetentionMs: readInt(env, "RESULT_RETENTION_MS", 0) ?? 1_800_000,
    promptCache: (readEnum(env, "PROMPT_CACHE", ["on", "off"]) ?? "on") === "on",
    deltaWindowMs: readInt(env, "DELTA_WINDOW_MS", 0, 10_000) ?? 20,
    shutdownTimeoutMs: readInt(env, "SHUTDOWN_TIMEOUT_MS", 0) ?? 30_000,
    keepAliveMs: readDuration(env, "KEEP_ALIVE") ?? 300_000,
    warmThreads: readInt(env, "WARM_THREADS", 0, 8) ?? 1,
    maxSwapWaitMs: readInt(env, "MAX_SWAP_WAIT_MS", 0) ?? 30_000,
    dataDir: path.resolve(
      host.cwd,
      readRaw(env, "DATA_DIR") ?? path.join(host.packageRoot, ".data"),
    ),
    logLevel: readEnum(env, "LOG_LEVEL", ["debug", "info", "warn", "error"]) ?? "info",
    logFormat: readLogFormat(env),
  };
  const config: Config = {
    ...settings,
    served: resolveServedModels(settings.models, settings.dataDir, settings),
  };
  if (config.allowPlaintextOpenai && config.encryptOutput === "always") {
    throw new ConfigError(
      "ALLOW_PLAINTEXT_OPENAI=true contradicts ENCRYPT_OUTPUT=always: a plaintext OpenAI request gets a plaintext answer (leave one of them unset)",
    );
  }
  return Object.freeze(config);
}

function readClientKeysPath(env: Env, cwd: string): string | undefined {
  const file = readRaw(env, "CLIENT_KEYS_FILE");
  return file === undefined ? undefined : path.resolve(cwd, file);
}

/** Booleans the way `huggingface_hub` reads them: 1/true/yes/on, 0/false/no/off. */

function readDashboardRetention(env: Env): DashboardRetention {
  const fallback = { count: 1000, ageSeconds: 3600 };
  return (
    readVar(
      env,
      "DASHBOARD_RETENTION",
      z
        .string()
        .regex(/^(off|(count=\d+|age=\d+)(,(count=\d+|age=\d+))?)$/)
        .transform((text) => {
          if (text === "off") return { count: 0, ageSeconds: 0 };
          const parts = Object.fromEntries(text.split(",").map((part) => part.split("=")));
          return {
            count: parts.count === undefined ? fallback.count : Number(parts.count),
            ageSeconds: parts.age === undefined ? fallback.ageSeconds : Number(parts.age),
          };
        }),
      'be "count=N,age=SECONDS" (either part may be left out) or "off", e.g. count=1000,age=3600',
    ) ?? fallback
  );
}

function readGpu(env: Env): GpuChoice {
  const value = readEnum(env, "LLAMA_GPU", ["auto", "cuda", "vulkan", "metal", "off"]) ?? "auto";
  return value === "off" ? false : value;
}

function readLogFormat(env: Env): LogFormat {
  const format = readEnum(env, "LOG_FORMAT", ["text", "json"]) ?? "text";
  // RunPod's log viewer reads its own JSON lines; the platform sets RUNPOD_ENDPOINT_ID on workers.
  return readRaw(env, "RUNPOD_ENDPOINT_ID") === undefined ? format : "runpod";
}

function readRunpod(env: Env): RunpodConfig {
  const url = (name: string) =>
    readVar(
      env,
      name,
      z.string().regex(/^https?:\/\/\S+$/),
      "be an http:// or https:// URL (template) without spaces",
    );
  const getJobUrl = url("RUNPOD_WEBHOOK_GET_JOB");
  const postOutputUrl = url("RUNPOD_WEBHOOK_POST_OUTPUT");
  if (getJobUrl === undefined) throw new ConfigError("RUNPOD_WEBHOOK_GET_JOB must be set");
  if (postOutputUrl === undefined) {
    throw new ConfigError(
      "RUNPOD_WEBHOOK_POST_OUTPUT must be set when RUNPOD_WEBHOOK_GET_JOB is (RunPod sets both)",
    );
  }
  return Object.freeze({
    getJobUrl,
    postOutputUrl,
    postStreamUrl: url("RUNPOD_WEBHOOK_POST_STREAM"),
    pingUrl: url("RUNPOD_WEBHOOK_PING"),
    apiKey: readRaw(env, "RUNPOD_AI_API_KEY"),
    podId: readRaw(env, "RUNPOD_POD_ID") ?? randomUUID(),
    pingIntervalMs: readInt(env, "RUNPOD_PING_INTERVAL", 100, 3_600_000) ?? 10_000,
  });
}
