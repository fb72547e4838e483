import { randomUUID } from "node:crypto";
import type { Config } from "../shared/config/index.js";
import type { KeyRing } from "../shared/crypto/index.js";
import type { Logger } from "../shared/log.js";
import { RedisNames } from "../shared/naming.js";
import { sleep } from "../shared/process/sleep.js";
import type { RedisClient, RedisTarget } from "../shared/redis/index.js";
import { closeRedis, createRedis } from "../shared/redis/index.js";
import type { ClientRings } from "./admission/admit-request.js";
import { QueueReservations } from "./admission/queue-reservations.js";
import { clampRetryAfter, ServiceTimes } from "./admission/service-times.js";
import { JobStore } from "./jobs/durable/job-store.js";
import { JobService } from "./jobs/job-service.js";
import { JobTable } from "./jobs/job-table.js";
import { ModelQueues } from "./jobs/model-queues.js";
import { OrchestratorMetrics } from "./metrics/orchestrator-metrics.js";
import { ModelRegistryReader } from "./registry/model-registry-reader.js";

/** How long a drained orchestrator still waits for pollers to fetch the chunks of ended jobs. */
const drainGraceMs = 2000;
/** Finished jobs kept in memory; older ones (within `RESULT_RETENTION_MS`) are read from Redis. */
const maxFinishedInMemory = 1000;
/** The longest a job may live (`policy.executionTimeout` is capped at 24 h). */
const maxJobLifeMs = 86_400_000;

export interface OrchestratorOptions {
  config: Config;
  keyRing: KeyRing;
  /** The named clients (`CLIENT_KEYS_FILE`); without it only the anonymous client is served. */
  clients?: ClientRings | undefined;
  /** The Redis (a URL, a Sentinel-managed primary or a cluster) every connection is made from. */
  redisTarget: RedisTarget;
  log: Logger;
}

/**
 * The orchestrator's core, shared by its front ends (the local API; the RunPod job loop): Redis
 * connections, the model queues, the reply relay and the job service.
 */
export class Orchestrator {
  readonly id = randomUUID();
  readonly jobs: JobService;
  readonly queues: ModelQueues;
  /** Which live gpu-workers serve which model. */
  readonly registry: ModelRegistryReader;
  /** The Prometheus metrics of the jobs this orchestrator accepted. */
  readonly metrics: OrchestratorMetrics;
  readonly models: readonly string[];
  /** `MAX_REQUEST_BYTES`, for front ends that take bodies. */
  readonly maxRequestBytes: number;
  /** `ALLOW_PLAINTEXT_OPENAI`, for the front ends that serve OpenAI's routes. */
  readonly allowPlaintextOpenai: boolean;
  /** The named clients, whose jobs only they may read (see `local-api/job-owner.ts`). */
  readonly clients: ClientRings | undefined;
  readonly #redis: RedisClient;
  readonly #subscriber: RedisClient;
  readonly #queueRedis: RedisClient;
  readonly #table: JobTable;
  readonly #config: Config;
  readonly #log: Logger;
  #closing: Promise<void> | undefined;

  private constructor(options: OrchestratorOptions) {
    const { config, keyRing, clients, redisTarget, log } = options;
    this.clients = clients;
    const names = new RedisNames(config.redisPrefix);
    this.#config = config;
    this.#log = log;
    this.maxRequestBytes = config.maxRequestBytes;
    this.allowPlaintextOpenai = config.allowPlaintextOpenai;
    this.models = config.served.map((model) => model.name);
    this.#redis = createRedis(redisTarget, "orchestrator", log);
    // On a cluster, replies come by sharded pub/sub: a channel per job (see `relay/reply-relay.ts`).
    this.#subscriber = createRedis(redisTarget, "orchestrator-replies", log, {
      shardedSubscribers: true,
    });
    // BullMQ's queues have a connection of their own: ioredis copies every script defined on a
    // connection (BullMQ's 64) into each pipeline or MULTI started there, which the job records
    // and registry reads on `#redis` then do not pay.
    this.#queueRedis = createRedis(redisTarget, "orchestrator-queues", log);
    // A RunPod worker posts results to the platform, which keeps them; it holds them here too, to
    // answer a job the platform delivers again (a lost post) without running it twice.
    this.#table = new JobTable({
      retentionMs: config.resultRetentionMs,
      // Older results are read back from Redis: this process's memory stays flat.
      maxFinished: maxFinishedInMemory,
      onEnd: (record) => this.metrics.jobEnded(record),
    });
    // A RunPod worker's results are the platform's to keep; the local API keeps them in Redis.
    const store =
      config.mode === "runpod"
        ? undefined
        : new JobStore({
            redis: this.#redis,
            names,
            keyRing,
            owner: this.id,
            retentionMs: config.resultRetentionMs,
            presenceTtlMs: config.registryTtlMs,
            maxJobLifeMs,
          });
    this.queues = new ModelQueues({
      models: this.models,
      connection: this.#queueRedis,
      redisTarget,
      names,
      log,
      onFailed: (jobId, reason) => void this.jobs.onQueueFailed(jobId, reason),
      retention: config.dashboardRetention,
    });
    this.registry = new ModelRegistryReader({ redis: this.#redis, names, log });
    this.metrics = new OrchestratorMetrics({
      models: this.models,
      queues: this.queues,
      registry: this.registry,
      clientLabel: config.clientMetricsLabel,
      log,
    });
    const settings = new Map(config.served.map((model) => [model.name, model.settings]));
    this.jobs = new JobService({
      redis: this.#redis,
      subscriber: this.#subscriber,
      names,
      orchestratorId: this.id,
      queues: this.queues,
      table: this.#table,
      admission: {
        keyRing,
        ...(clients === undefined ? {} : { clients }),
        models: this.models,
        limits: { maxTokensLimit: config.maxTokensLimit },
        defaultMaxTokens: config.defaultMaxTokens,
        maxRequestBytes: config.maxRequestBytes,
        ttlSeconds: config.fernetTtlSeconds,
        encryptOutput: config.encryptOutput,
        allowPlaintextOpenai: config.allowPlaintextOpenai,
        embeddingModels: config.served
          .filter((model) => model.settings.embeddings)
          .map((model) => model.name),
        sequencesPerThread: (model) => settings.get(model)?.sequences ?? config.modelSequences,
      },
      capacity: {
        registry: this.registry,
        reservations: new QueueReservations({
          redis: this.#redis,
          names,
          queues: this.queues,
          log,
        }),
        queueLimit: (model) => settings.get(model)?.queueLimit ?? config.maxQueuedJobs,
        slotsPerWorker: (model) => {
          const served = settings.get(model);
          return served === undefined ? 1 : served.threads * served.sequences;
        },
        serviceTimes: new ServiceTimes(),
        unavailableRetryAfterSeconds: clampRetryAfter(config.registryTtlMs / 1000),
      },
      keyRing,
      jobTimeoutMs: config.jobTimeoutMs,
      registryTtlMs: config.registryTtlMs,
      // RunPod: the gpu-worker dies with its container; a lost job fails as it always has.
      ...(config.mode === "runpod"
        ? {}
        : { continuations: { maxAttempts: config.maxJobAttempts } }),
      ...(store === undefined ? {} : { store }),
      metrics: this.metrics,
      log,
    });
    this.metrics.observe(this.jobs);
  }

  /**
   * Whether every served model is served (by the registry): `ready` on a gpu-worker, or `cold` on
   * one that loads it when a job asks (a model a gpu-worker is still loading, or that none has,
   * is not), and each model's state. Rejects when Redis does not answer.
   */
  async readiness(): Promise<{ ready: boolean; models: Record<string, string> }> {
    const serving = await this.registry.read(this.models);
    const models: Record<string, string> = {};
    for (const model of this.models) models[model] = serving.get(model)?.state ?? "unavailable";
    const ready = Object.values(models).every((state) => state === "ready" || state === "cold");
    return { ready, models };
  }

  /** Connects and subscribes; resolves when jobs can be accepted. */
  static async start(options: OrchestratorOptions): Promise<Orchestrator> {
    const orchestrator = new Orchestrator(options);
    try {
      await orchestrator.queues.ready();
      await orchestrator.jobs.start();
    } catch (error) {
      await orchestrator.close();
      throw error;
    }
    // Not yet "ready": that is the front end's to say, once it serves (the local API's port bound).
    options.log.debug("orchestrator connected to Redis", {
      models: orchestrator.models.join(","),
      replyChannel: orchestrator.jobs.replyChannel,
    });
    return orchestrator;
  }

  /**
   * Stops accepting jobs and lets active ones end, up to the shutdown timeout (then cancels
   * them). Front ends keep answering `/stream` and `/status` meanwhile.
   */
  async drain(): Promise<void> {
    await this.jobs.close(this.#config.shutdownTimeoutMs);
    // Give pollers a moment to fetch the last chunks of jobs that just ended.
    const deadline = performance.now() + drainGraceMs;
    while (this.#table.hasRecentlyEndedUnstreamed(drainGraceMs) && performance.now() < deadline) {
      await sleep(50);
    }
  }

  /** Drains, then disconnects. */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      await this.drain();
      // Each gives Redis a short grace at most; side by side, a dead Redis costs it once.
      await Promise.all([this.jobs.disconnect(), this.queues.close()]);
      this.#table.close();
      await Promise.all([
        closeRedis(this.#redis),
        closeRedis(this.#subscriber),
        closeRedis(this.#queueRedis),
      ]);
      this.#log.info("orchestrator stopped");
    })();
    return this.#closing;
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}
