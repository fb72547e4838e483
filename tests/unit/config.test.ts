import assert from "node:assert/strict";
import path from "node:path";
import { describe, it } from "node:test";
import { inspect } from "node:util";
import { type ConfigHost, loadConfig } from "../../shared/config/index.js";
import { FernetKey } from "../../shared/crypto/index.js";
import { ConfigError, ErrorCode } from "../../shared/errors/index.js";
import { servedSlots } from "../../shared/models/served-models.js";

const host: ConfigHost = {
  cwd: "/srv/app",
  homeDir: "/home/tester",
  cpuCount: 9,
  runpodVolumeExists: false,
  packageRoot: "/opt/pool",
};

/** Asserts `env` fails to load with a ConfigError whose message has every `expected` text. */
function assertRejected(
  env: Record<string, string>,
  expected: readonly string[],
  hidden: readonly string[] = [],
  machine: ConfigHost = host,
): void {
  assert.throws(
    () => loadConfig(env, machine),
    (error: unknown) => {
      assert.ok(error instanceof ConfigError, `expected a ConfigError, got ${String(error)}`);
      assert.equal(error.code, ErrorCode.CONFIG_INVALID);
      for (const text of expected) {
        assert.ok(error.message.includes(text), `"${text}" missing from: ${error.message}`);
      }
      for (const shown of [error.message, String(error), inspect(error), error.stack ?? ""]) {
        for (const secret of hidden) assert.ok(!shown.includes(secret), "a secret is echoed");
      }
      return true;
    },
  );
}

describe("loadConfig defaults", () => {
  const config = loadConfig({}, host);

  it("serves the local API on 127.0.0.1:8000 in local mode", () => {
    assert.equal(config.mode, "local");
    assert.equal(config.host, "127.0.0.1");
    assert.equal(config.port, 8000);
    assert.equal(config.apiKey, undefined);
  });

  it("fills the documented defaults", () => {
    assert.equal(config.gpuMemoryUtilization, 0.95);
    assert.equal(config.gpu, "auto");
    assert.equal(config.redisUrl, undefined);
    assert.equal(config.redisPrefix, "llmpool");
    assert.equal(config.modelThreads, 1);
    assert.equal(config.modelSequences, 4);
    assert.equal(config.contextSize, undefined);
    assert.equal(config.defaultMaxTokens, 256);
    assert.equal(config.maxTokensLimit, 4096);
    assert.equal(config.jobTimeoutMs, 600_000);
    assert.equal(config.resultRetentionMs, 1_800_000);
    assert.equal(config.deltaWindowMs, 20);
    assert.equal(config.shutdownTimeoutMs, 30_000);
    assert.equal(config.memoryBudgetMb, undefined);
    assert.equal(config.maxQueuedJobs, 1000);
    assert.equal(config.registryTtlMs, 10_000);
    assert.equal(config.logLevel, "info");
    assert.equal(config.logFormat, "text");
    assert.deepEqual(config.models, []);
    assert.equal(config.keyRing, undefined);
    assert.equal(config.hfToken, undefined);
    assert.equal(config.dataDir, path.join("/opt/pool", ".data"));
  });

  it("puts HF_HOME under the home directory without a RunPod volume", () => {
    assert.equal(config.hfHome, "/home/tester/.cache/huggingface");
  });

  it("puts HF_HOME on /runpod-volume when the volume exists", () => {
    const onVolume = loadConfig({}, { ...host, runpodVolumeExists: true });
    assert.equal(onVolume.hfHome, "/runpod-volume/huggingface-cache");
  });

  it("lets HF_HOME override both defaults", () => {
    const set = loadConfig({ HF_HOME: "/cache/hf" }, { ...host, runpodVolumeExists: true });
    assert.equal(set.hfHome, "/cache/hf");
    assert.equal(set.hfHubCache, "/cache/hf/hub");
  });

  it("reads the Hugging Face variables the way huggingface_hub does", () => {
    assert.equal(config.hfHubCache, "/home/tester/.cache/huggingface/hub");
    assert.equal(config.hfEndpoint, "https://huggingface.co");
    assert.equal(config.hfOffline, false);
    assert.deepEqual(config.hfQuant, ["Q4_K_M"]);
    const set = loadConfig(
      {
        HF_HOME: "/cache/hf",
        HF_HUB_CACHE: "/models/hub",
        HF_ENDPOINT: "http://mirror.local:8080/",
        HF_HUB_OFFLINE: "TRUE",
        HF_QUANT: "q5_k_m, Q8_0",
      },
      host,
    );
    assert.equal(set.hfHubCache, "/models/hub");
    assert.equal(set.hfEndpoint, "http://mirror.local:8080");
    assert.equal(set.hfOffline, true);
    assert.deepEqual(set.hfQuant, ["Q5_K_M", "Q8_0"]);
    assert.equal(loadConfig({ HUGGINGFACE_HUB_CACHE: "/old/hub" }, host).hfHubCache, "/old/hub");
    assert.equal(loadConfig({ HF_HUB_OFFLINE: "0" }, host).hfOffline, false);
  });

  it("parses Hugging Face specs in MODELS without touching the network or the disk", () => {
    const set = loadConfig({ MODELS: "Qwen/Qwen2.5-0.5B-Instruct-GGUF:Q8_0" }, host);
    assert.deepEqual(set.models, [
      {
        name: "Qwen2.5-0.5B-Instruct-GGUF",
        source: {
          kind: "hub",
          repo: "Qwen/Qwen2.5-0.5B-Instruct-GGUF",
          revision: "main",
          quant: "Q8_0",
        },
        settings: {},
      },
    ]);
  });

  it("shares all cores but one among the model threads for llama.cpp", () => {
    // (9 - 1) / (1 thread x 1 model) = 8
    assert.equal(config.llamaThreads, 8);
    // (9 - 1) / (2 threads x 3 models) = 1.33 -> 1
    const models = "a=/m/a.gguf,b=/m/b.gguf,c=/m/c.gguf";
    assert.equal(loadConfig({ MODEL_THREADS: "2", MODELS: models }, host).llamaThreads, 1);
    // (17 - 1) / (2 threads x 2 models) = 4
    const wide = loadConfig(
      { MODEL_THREADS: "2", MODELS: "a=/m/a.gguf,b=/m/b.gguf" },
      { ...host, cpuCount: 17 },
    );
    assert.equal(wide.llamaThreads, 4);
    // (17 - 1) / (1 + 3 threads, per-model settings count) = 4
    const mixed = loadConfig(
      { MODELS: "a=/m/a.gguf,b=/m/b.gguf?threads=3" },
      { ...host, cpuCount: 17 },
    );
    assert.equal(mixed.llamaThreads, 4);
  });

  it("lets a MODELS entry override the global model settings", () => {
    const mixed = loadConfig(
      {
        MODELS:
          "a=/m/a.gguf,b=/m/b.gguf?threads=2&sequences=8&context=2048&llama_threads=3&queue_limit=7&preload=false&pin=true&embeddings=true",
        MODEL_SEQUENCES: "4",
        CONTEXT_SIZE: "1024",
        MAX_QUEUED_JOBS: "50",
      },
      host,
    );
    const [a, b] = mixed.served.map((model) => model.settings);
    assert.deepEqual(a, {
      contextSize: 1024,
      sequences: 4,
      threads: 1,
      llamaThreads: 2,
      queueLimit: 50,
      preload: true,
      pin: false,
      embeddings: false,
    });
    assert.deepEqual(b, {
      contextSize: 2048,
      sequences: 8,
      threads: 2,
      llamaThreads: 3,
      queueLimit: 7,
      preload: false,
      pin: true,
      embeddings: true,
    });
    assert.equal(servedSlots(mixed), 1 * 4 + 2 * 8);
    assert.equal(servedSlots(loadConfig({ MODEL_SEQUENCES: "3" }, host)), 3);
  });

  it("reads KEEP_ALIVE as Ollama's keep_alive, and MAX_SWAP_WAIT_MS", () => {
    const keep = (value: string) => loadConfig({ KEEP_ALIVE: value }, host).keepAliveMs;
    assert.equal(loadConfig({}, host).keepAliveMs, 300_000);
    assert.equal(keep("0"), 0);
    assert.equal(keep("-1"), -1);
    assert.equal(keep("1500"), 1500);
    assert.equal(keep("250ms"), 250);
    assert.equal(keep("30s"), 30_000);
    assert.equal(keep("5m"), 300_000);
    assert.equal(keep("2h"), 7_200_000);
    assert.throws(
      () => keep("5 minutes"),
      /KEEP_ALIVE must be a duration such as 0, 30s, 5m or 1h/,
    );
    assert.throws(() => keep("-2"), /KEEP_ALIVE must be/);
    assert.equal(loadConfig({}, host).maxSwapWaitMs, 30_000);
    assert.equal(loadConfig({ MAX_SWAP_WAIT_MS: "0" }, host).maxSwapWaitMs, 0);
  });

  it("refuses a preload or pin setting that is not true or false", () => {
    assert.throws(
      () => loadConfig({ MODELS: "a=/m/a.gguf?pin=yes" }, host),
      /MODELS entry .*setting "pin" must be true or false, got "yes"/,
    );
  });

  it("never gives llama.cpp fewer than one thread", () => {
    assert.equal(loadConfig({}, { ...host, cpuCount: 1 }).llamaThreads, 1);
    assert.equal(loadConfig({ MODEL_THREADS: "64" }, { ...host, cpuCount: 2 }).llamaThreads, 1);
  });

  it("treats blank variables as unset", () => {
    const blank = loadConfig({ PORT: "  ", HOST: "", LOG_LEVEL: " " }, host);
    assert.equal(blank.port, 8000);
    assert.equal(blank.host, "127.0.0.1");
    assert.equal(blank.logLevel, "info");
  });
});

describe("loadConfig reads every variable", () => {
  it("parses set values", () => {
    const key = FernetKey.generate().exportKey();
    const config = loadConfig(
      {
        RUNPOD_WEBHOOK_GET_JOB: "https://api.runpod.example/job-take/$ID",
        RUNPOD_WEBHOOK_POST_OUTPUT: "https://api.runpod.example/job-done/$ID",
        ENCRYPTION_KEY: key,
        HOST: "0.0.0.0",
        PORT: "9001",
        GPU_MEMORY_UTILIZATION: "0.5",
        LLAMA_GPU: "off",
        REDIS_URL: "redis://redis:6379/2",
        REDIS_PREFIX: "pool.a_1-x",
        API_KEY: "k",
        HF_TOKEN: "hf_x",
        MODEL_THREADS: "2",
        MODEL_SEQUENCES: "8",
        LLAMA_THREADS: "3",
        CONTEXT_SIZE: "2048",
        MAX_TOKENS_DEFAULT: "100",
        MAX_TOKENS_LIMIT: "200",
        JOB_TIMEOUT_MS: "5000",
        RESULT_RETENTION_MS: "0",
        DELTA_WINDOW_MS: "0",
        SHUTDOWN_TIMEOUT_MS: "10",
        MEMORY_BUDGET_MB: "2048",
        MAX_QUEUED_JOBS: "5",
        REGISTRY_TTL_MS: "3000",
        DATA_DIR: "state",
        LOG_LEVEL: "debug",
        LOG_FORMAT: "json",
      },
      host,
    );
    assert.equal(config.mode, "runpod");
    assert.equal(config.keyRing?.size, 1);
    assert.equal(config.host, "0.0.0.0");
    assert.equal(config.port, 9001);
    assert.equal(config.gpuMemoryUtilization, 0.5);
    assert.equal(config.gpu, false);
    assert.equal(config.redisUrl, "redis://redis:6379/2");
    assert.equal(config.redisPrefix, "pool.a_1-x");
    assert.equal(config.apiKey, "k");
    assert.equal(config.hfToken, "hf_x");
    assert.equal(config.modelThreads, 2);
    assert.equal(config.modelSequences, 8);
    assert.equal(config.llamaThreads, 3);
    assert.equal(config.contextSize, 2048);
    assert.equal(config.defaultMaxTokens, 100);
    assert.equal(config.maxTokensLimit, 200);
    assert.equal(config.jobTimeoutMs, 5000);
    assert.equal(config.resultRetentionMs, 0);
    assert.equal(config.deltaWindowMs, 0);
    assert.equal(config.shutdownTimeoutMs, 10);
    assert.equal(config.memoryBudgetMb, 2048);
    assert.equal(config.maxQueuedJobs, 5);
    assert.equal(config.registryTtlMs, 3000);
    assert.equal(config.dataDir, "/srv/app/state");
    assert.equal(config.logLevel, "debug");
    assert.equal(config.logFormat, "json");
  });

  it("accepts GPU_MEMORY_UTILIZATION of exactly 1 and the gpu backends", () => {
    assert.equal(loadConfig({ GPU_MEMORY_UTILIZATION: "1" }, host).gpuMemoryUtilization, 1);
    assert.equal(loadConfig({ GPU_MEMORY_UTILIZATION: ".25" }, host).gpuMemoryUtilization, 0.25);
    assert.equal(loadConfig({ LLAMA_GPU: "cuda" }, host).gpu, "cuda");
  });

  it("accepts rediss:// and unix:// Redis URLs", () => {
    assert.equal(loadConfig({ REDIS_URL: "rediss://h:1" }, host).redisUrl, "rediss://h:1");
    assert.equal(loadConfig({ REDIS_URL: "unix:///r.sock" }, host).redisUrl, "unix:///r.sock");
  });

  it("gives a ring of two keys for two comma-separated keys", () => {
    const keys = [FernetKey.generate(), FernetKey.generate()];
    const config = loadConfig(
      { ENCRYPTION_KEY: keys.map((key) => key.exportKey()).join(" , ") },
      host,
    );
    assert.equal(config.keyRing?.size, 2);
    // The first key encrypts, both decrypt.
    const token = config.keyRing?.encrypt("x") ?? "";
    assert.equal(keys[0]?.decrypt(token).toString(), "x");
    assert.equal(config.keyRing?.decrypt(keys[1]?.encrypt("y") ?? "").toString(), "y");
  });

  it("parses MODELS into named, absolute entries", () => {
    const config = loadConfig({ MODELS: "models/a.gguf, big=/m/b.gguf" }, host);
    assert.deepEqual(config.models, [
      { name: "a", source: { kind: "file", path: "/srv/app/models/a.gguf" }, settings: {} },
      { name: "big", source: { kind: "file", path: "/m/b.gguf" }, settings: {} },
    ]);
  });
});

describe("loadConfig result", () => {
  it("is frozen, models included", () => {
    const config = loadConfig({ MODELS: "a.gguf" }, host);
    assert.ok(Object.isFrozen(config));
    assert.ok(Object.isFrozen(config.models));
    assert.ok(Object.isFrozen(config.models[0]));
    assert.throws(() => {
      (config as { port: number }).port = 1;
    }, TypeError);
    assert.throws(() => {
      (config.models as unknown as unknown[]).push({ name: "b", path: "/b.gguf" });
    }, TypeError);
    assert.equal(config.port, 8000);
  });
});

describe("loadConfig errors name the variable and the rule", () => {
  const cases: Array<{ env: Record<string, string>; expected: string[] }> = [
    {
      env: { GPU_MEMORY_UTILIZATION: "1.5" },
      expected: ["GPU_MEMORY_UTILIZATION", "(0, 1]", "1.5"],
    },
    { env: { GPU_MEMORY_UTILIZATION: "0" }, expected: ["GPU_MEMORY_UTILIZATION", "(0, 1]", '"0"'] },
    {
      env: { GPU_MEMORY_UTILIZATION: "most" },
      expected: ["GPU_MEMORY_UTILIZATION", "(0, 1]", "most"],
    },
    { env: { PORT: "abc" }, expected: ["PORT", "whole number", "[0, 65535]", '"abc"'] },
    { env: { PORT: "65536" }, expected: ["PORT", "[0, 65535]", "65536"] },
    { env: { PORT: "80.5" }, expected: ["PORT", "whole number", "80.5"] },
    { env: { MODEL_SEQUENCES: "0" }, expected: ["MODEL_SEQUENCES", "[1, 256]", '"0"'] },
    { env: { MODEL_THREADS: "-1" }, expected: ["MODEL_THREADS", "[1, 64]", "-1"] },
    { env: { LLAMA_THREADS: "0" }, expected: ["LLAMA_THREADS", "[1, 1024]"] },
    { env: { CONTEXT_SIZE: "8" }, expected: ["CONTEXT_SIZE", "[64, 1048576]", '"8"'] },
    { env: { JOB_TIMEOUT_MS: "10" }, expected: ["JOB_TIMEOUT_MS", ">= 1000", '"10"'] },
    { env: { RESULT_RETENTION_MS: "soon" }, expected: ["RESULT_RETENTION_MS", ">= 0", "soon"] },
    { env: { DELTA_WINDOW_MS: "20000" }, expected: ["DELTA_WINDOW_MS", "[0, 10000]", "20000"] },
    { env: { SHUTDOWN_TIMEOUT_MS: "1e3" }, expected: ["SHUTDOWN_TIMEOUT_MS", "1e3"] },
    { env: { MAX_TOKENS_LIMIT: "0" }, expected: ["MAX_TOKENS_LIMIT", "[1, 1000000]"] },
    { env: { MEMORY_BUDGET_MB: "0" }, expected: ["MEMORY_BUDGET_MB", ">= 1", '"0"'] },
    { env: { MAX_QUEUED_JOBS: "many" }, expected: ["MAX_QUEUED_JOBS", ">= 1", '"many"'] },
    { env: { REGISTRY_TTL_MS: "50" }, expected: ["REGISTRY_TTL_MS", "[1000, 3600000]"] },
    { env: { LOG_LEVEL: "loud" }, expected: ["LOG_LEVEL", "debug, info, warn, error", '"loud"'] },
    { env: { LOG_FORMAT: "xml" }, expected: ["LOG_FORMAT", "text, json", '"xml"'] },
    { env: { LLAMA_GPU: "tpu" }, expected: ["LLAMA_GPU", "auto, cuda, vulkan, metal, off", "tpu"] },
    {
      env: { REDIS_PREFIX: "has space" },
      expected: ["REDIS_PREFIX", "1-64 characters", '"has space"'],
    },
    {
      env: { MAX_TOKENS_DEFAULT: "5000" },
      expected: ["MAX_TOKENS_DEFAULT", "5000", "must not exceed", "MAX_TOKENS_LIMIT", "4096"],
    },
    {
      env: { MAX_TOKENS_DEFAULT: "300", MAX_TOKENS_LIMIT: "200" },
      expected: ["MAX_TOKENS_DEFAULT", "300", "MAX_TOKENS_LIMIT", "200"],
    },
    { env: { MODELS: " , ," }, expected: ["MODELS", "at least one model"] },
    { env: { MODELS: "model.bin" }, expected: ["MODELS", "model.bin", ".gguf"] },
    { env: { HF_ENDPOINT: "huggingface.co" }, expected: ["HF_ENDPOINT", "http", "huggingface.co"] },
    { env: { HF_HUB_OFFLINE: "maybe" }, expected: ["HF_HUB_OFFLINE", "1, true", '"maybe"'] },
    { env: { HF_QUANT: "Q4 K M" }, expected: ["HF_QUANT", "comma-separated", '"Q4 K M"'] },
    {
      env: { RUNPOD_WEBHOOK_GET_JOB: "https://api.runpod.example/job-take" },
      expected: ["ENCRYPTION_KEY", "RunPod"],
    },
  ];
  for (const { env, expected } of cases) {
    it(`rejects ${JSON.stringify(env)}`, () => assertRejected(env, expected));
  }

  it("truncates a very long bad value instead of echoing all of it", () => {
    const long = `x${"9".repeat(5000)}`;
    assert.throws(
      () => loadConfig({ PORT: long }, host),
      (error: unknown) =>
        error instanceof ConfigError &&
        error.message.includes("PORT") &&
        error.message.length < 400,
    );
  });
});

describe("loadConfig never echoes secrets", () => {
  it("does not show a bad ENCRYPTION_KEY", () => {
    const bad = "SECRETKEYMARKER-not-a-fernet-key-0123456789";
    assertRejected({ ENCRYPTION_KEY: bad }, ["ENCRYPTION_KEY"], [bad, "SECRETKEYMARKER"]);
  });

  it("does not show a good key next to a bad one", () => {
    const good = FernetKey.generate().exportKey();
    assertRejected(
      { ENCRYPTION_KEY: `${good},nope` },
      ["ENCRYPTION_KEY", "entry 2 of 2"],
      [good, good.slice(0, 12), "nope"],
    );
  });

  it("does not show a bad REDIS_URL, which may hold a password", () => {
    const password = "pw-MARKER-7f3a9c";
    const url = `http://user:${password}@redis.internal:6379`;
    assertRejected(
      { REDIS_URL: url },
      ["REDIS_URL", "redis://"],
      [password, url, "redis.internal"],
    );
  });
});

describe("loadConfig: security settings", () => {
  it("defaults to a 10 MiB request cap, a one-hour replay window and encryption on request", () => {
    const config = loadConfig({}, host);
    assert.equal(config.maxRequestBytes, 10 * 1024 * 1024);
    assert.equal(config.fernetTtlSeconds, 3600);
    assert.equal(config.encryptOutput, "request");
  });

  it("reads MAX_REQUEST_BYTES, FERNET_TTL_SECONDS (0 = off) and ENCRYPT_OUTPUT", () => {
    const config = loadConfig(
      { MAX_REQUEST_BYTES: "2048", FERNET_TTL_SECONDS: "0", ENCRYPT_OUTPUT: "always" },
      host,
    );
    assert.equal(config.maxRequestBytes, 2048);
    assert.equal(config.fernetTtlSeconds, 0);
    assert.equal(config.encryptOutput, "always");
    assert.equal(loadConfig({ ENCRYPT_OUTPUT: "never" }, host).encryptOutput, "never");
  });

  it("refuses bad values, naming the variable and the rule", () => {
    assertRejected({ MAX_REQUEST_BYTES: "10" }, ["MAX_REQUEST_BYTES", "1024"]);
    assertRejected({ MAX_REQUEST_BYTES: "10MB" }, ["MAX_REQUEST_BYTES", "whole number"]);
    assertRejected({ FERNET_TTL_SECONDS: "-1" }, ["FERNET_TTL_SECONDS", "whole number"]);
    assertRejected({ ENCRYPT_OUTPUT: "yes" }, ["ENCRYPT_OUTPUT", "always, request, never"]);
  });
});

describe("loadConfig: operator settings", () => {
  it("keeps 1000 finished jobs for an hour and serves no gpu-worker metrics by default", () => {
    const config = loadConfig({}, host);
    assert.deepEqual(config.dashboardRetention, { count: 1000, ageSeconds: 3600 });
    assert.equal(config.metricsPort, undefined);
  });

  it("reads DASHBOARD_RETENTION by count and age (either may be left out; off = none)", () => {
    const retention = (value: string) =>
      loadConfig({ DASHBOARD_RETENTION: value }, host).dashboardRetention;
    assert.deepEqual(retention("count=50,age=600"), { count: 50, ageSeconds: 600 });
    assert.deepEqual(retention("age=60,count=5"), { count: 5, ageSeconds: 60 });
    assert.deepEqual(retention("count=20"), { count: 20, ageSeconds: 3600 });
    assert.deepEqual(retention("age=86400"), { count: 1000, ageSeconds: 86400 });
    assert.deepEqual(retention("off"), { count: 0, ageSeconds: 0 });
    assert.equal(loadConfig({ METRICS_PORT: "9464" }, host).metricsPort, 9464);
  });

  it("refuses bad values, naming the variable and the rule", () => {
    for (const value of ["1000", "count=-1", "count=10,age=1h", "size=3", "count=1;age=2"]) {
      assertRejected({ DASHBOARD_RETENTION: value }, [
        "DASHBOARD_RETENTION",
        "count=N,age=SECONDS",
      ]);
    }
    assertRejected({ METRICS_PORT: "70000" }, ["METRICS_PORT", "whole number"]);
  });
});
