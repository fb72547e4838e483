import { existsSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { z } from "zod";
import { KeyRing } from "../crypto/index.js";
import { ConfigError } from "../errors/index.js";
import { parseModelsList } from "../models/model-spec.js";
import { packageRoot } from "../paths.js";
import type { Config, GpuChoice } from "./config.js";
import { type Env, readEnum, readInt, readRaw, readVar } from "./env-readers.js";

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
  const modelCount = Math.max(1, models.length);
  // One core stays free for the event loops (Redis, HTTP); the rest is shared by the model threads.
  const defaultLlamaThreads = Math.max(
    1,
    Math.floor((host.cpuCount - 1) / (modelThreads * modelCount)),
  );
  const defaultMaxTokens = readInt(env, "MAX_TOKENS_DEFAULT", 1, 1_000_000) ?? 256;
  const maxTokensLimit = readInt(env, "MAX_TOKENS_LIMIT", 1, 1_000_000) ?? 4096;
  if (defaultMaxTokens > maxTokensLimit) {
    throw new ConfigError(
      `MAX_TOKENS_DEFAULT (${defaultMaxTokens}) must not exceed MAX_TOKENS_LIMIT (${maxTokensLimit})`,
    );
  }

  const config: Config = {
    mode,
    models: Object.freeze(models),
    keyRing,
    hfToken: readRaw(env, "HF_TOKEN"),
    hfHome:
      readRaw(env, "HF_HOME") ??
      (host.runpodVolumeExists
        ? "/runpod-volume/huggingface-cache"
        : path.join(host.homeDir, ".cache", "huggingface")),
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
    gpu: readGpu(env),
    redisUrl: readVar(
      env,
      "REDIS_URL",
      z.string().regex(/^(redis|rediss|unix):\/\//),
      'be a URL starting with "redis://", "rediss://" or "unix://"',
      { secret: true },
    ),
    redisPrefix:
      readVar(
        env,
        "REDIS_PREFIX",
        z.string().regex(/^[A-Za-z0-9_.-]{1,64}$/),
        'be 1-64 characters of letters, digits, "_", "." or "-"',
      ) ?? "llmpool",
    host: readRaw(env, "HOST") ?? "127.0.0.1",
    port: readInt(env, "PORT", 0, 65535) ?? 8000,
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
    resultRetentionMs: readInt(env, "RESULT_RETENTION_MS", 0) ?? 1_800_000,
    deltaWindowMs: readInt(env, "DELTA_WINDOW_MS", 0, 10_000) ?? 20,
    shutdownTimeoutMs: readInt(env, "SHUTDOWN_TIMEOUT_MS", 0) ?? 30_000,
    dataDir: path.resolve(
      host.cwd,
      readRaw(env, "DATA_DIR") ?? path.join(host.packageRoot, ".data"),
    ),
    logLevel: readEnum(env, "LOG_LEVEL", ["debug", "info", "warn", "error"]) ?? "info",
    logFormat: readEnum(env, "LOG_FORMAT", ["text", "json"]) ?? "text",
  };
  return Object.freeze(config);
}

function readGpu(env: Env): GpuChoice {
  const value = readEnum(env, "LLAMA_GPU", ["auto", "cuda", "vulkan", "metal", "off"]) ?? "auto";
  return value === "off" ? false : value;
}
