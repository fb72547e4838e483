import { randomUUID } from "node:crypto";
import type { Config } from "../shared/config/index.js";
import type { KeyRing } from "../shared/crypto/index.js";
import type { Logger } from "../shared/log.js";
import { RedisNames } from "../shared/naming.js";
import { StartProgress } from "../shared/process/start-progress.js";
import type { ThreadStatsReport } from "../shared/protocol/index.js";
import type { RedisClient, RedisTarget } from "../shared/redis/index.js";
import { closeRedis, createRedis, isClusterTarget } from "../shared/redis/index.js";
import { checkMemory } from "./memory/check-memory.js";
import type { WorkerMetrics } from "./metrics/worker-metrics.js";
import { resolveModels } from "./models/resolve-models.js";
import { ModelPool } from "./pool/model-pool.js";
import { ThreadSpares } from "./pool/thread-spares.js";
import { ReplyPublisher } from "./publish/reply-publisher.js";
import { Cancellations } from "./queue/cancellations.js";
import { JobsDrain } from "./queue/jobs-drain.js";
import { closeModelWorker, createModelWorker } from "./queue/model-worker.js";
import { RegistryPublisher } from "./registry/registry-publisher.js";
import { type HostedModel, ModelHost } from "./scheduling/model-host.js";
import { ModelScheduler } from "./scheduling/model-scheduler.js";

export interface GpuWorkerOptions {
  config: Config;
  keyRing: KeyRing;
  /** The Redis (a URL, a Sentinel-managed primary or a cluster) every connection is made from. */
  redisTarget: RedisTarget;
  /** Where its jobs are counted (`METRICS_PORT`); none when unset. */
  metrics?: WorkerMetrics;
  log: Logger;
}

/**
 * One gpu-worker: the models of its catalogue (`MODELS`), loaded as its memory budget holds them
 * and as the pool's jobs ask (`scheduling/`), each a pool of threads holding it and a BullMQ Worker
 * taking jobs from its queue; replies go back through Redis; cancels and load requests come in on
 * the control channel.
 */
export class GpuWorker {
  readonly #redis: RedisClient;
  readonly #subscriber: RedisClient;
  readonly #replies: RedisClient;
  readonly #cancellations: Cancellations;
  readonly #registry: RegistryPublisher;
  #host: ModelHost | undefined;
  #spares: ThreadSpares | undefined;
  #scheduler: ModelScheduler | undefined;
  readonly #log: Logger;
  readonly #shutdownTimeoutMs: number;
  #closing: Promise<void> | undefined;

  private constructor(
    options: GpuWorkerOptions,
    redis: RedisClient,
    subscriber: RedisClient,
    replies: RedisClient,
  ) {
    this.#redis = redis;
    this.#subscriber = subscriber;
    this.#replies = replies;
    this.#log = options.log;
    this.#shutdownTimeoutMs = options.config.shutdownTimeoutMs;
    const names = new RedisNames(options.config.redisPrefix);
    this.#cancellations = new Cancellations({
      redis,
      subscriber,
      names,
      log: options.log,
      // A job waits for a model no gpu-worker has loaded: the scheduler looks at once.
      onLoadRequest: () => this.#scheduler?.wake(),
    });
    this.#registry = new RegistryPublisher({
      redis,
      names,
      workerId: randomUUID(),
      ttlMs: options.config.registryTtlMs,
      log: options.log,
    });
  }

  /** This gpu-worker's id in the model registry. */
  get id(): string {
    return this.#registry.workerId;
  }

  /**
   * Announces its models as `loading` in the registry (jobs for them queue up meanwhile), plans
   * memory (each model must fit the budget on its own), loads the preloaded models that fit (the
   * others are `cold`: loaded when a job asks), then starts the scheduler that loads and unloads
   * models as the pool's jobs ask. Rejects (after cleaning up, which withdraws the announcements) if
   * a model does not fit the budget on its own or a preloaded model fails to load; nothing is
   * loaded when the plan does not fit.
   */
  static async start(options: GpuWorkerOptions): Promise<GpuWorker> {
    const { config, keyRing, log } = options;
    const names = new RedisNames(config.redisPrefix);
    const redis = createRedis(options.redisTarget, "gpu-worker", log);
    const subscriber = createRedis(options.redisTarget, "gpu-worker-control", log);
    // The jobs' claims and replies have a connection of their own: they never wait behind
    // BullMQ's commands (its fetch of the next job), and a pipeline on it is cheap (ioredis copies
    // every script defined on a connection, BullMQ's 64, into each pipeline it starts there).
    const replies = createRedis(options.redisTarget, "gpu-worker-replies", log);
    const gpuWorker = new GpuWorker(options, redis, subscriber, replies);
    const progress = new StartProgress(log, "announcing its models in Redis");
    try {
      log.info("gpu-worker starting", { id: gpuWorker.id });
      await gpuWorker.#registry.announce(
        config.served.map((model) => model.name),
        "loading",
      );
      // Started now, warming while the rest starts: the memory plan's estimate runs on one, and
      // the first load takes one.
      const spares = new ThreadSpares({
        count: config.warmThreads,
        backend: {
          gpu: config.gpu,
          gpuMemoryUtilization: config.gpuMemoryUtilization,
          deltaWindowMs: config.deltaWindowMs,
        },
      });
      gpuWorker.#spares = spares;
      progress.step("finding the model files");
      const models = await resolveModels(config, log);
      progress.step("planning memory (node-llama-cpp reads the models' headers)");
      const plan = await checkMemory(models, config, spares, log);
      progress.step("subscribing to control messages");
      await gpuWorker.#cancellations.start();
      const publisher = new ReplyPublisher({
        redis: replies,
        names,
        keyRing,
        streamTtlSeconds: Math.ceil(config.jobTimeoutMs / 1000) + 300,
        workerId: gpuWorker.id,
        sharded: isClusterTarget(options.redisTarget),
        log,
      });
      const catalogue = models.map((model) => {
        const planned = plan.models.find((line) => line.name === model.name);
        if (planned === undefined) throw new Error(`the memory plan has no line for ${model.name}`);
        return { model, planned };
      });
      const host = new ModelHost({
        catalogue,
        budgetBytes: plan.budgetBytes,
        device: plan.device,
        registry: gpuWorker.#registry,
        startPool: ({ model, planned }) =>
          ModelPool.start({
            model,
            threads: model.settings.threads,
            sequences: model.settings.sequences,
            llamaThreads: model.settings.llamaThreads,
            contextSize: planned.contextSize,
            gpu: config.gpu,
            gpuMemoryUtilization: config.gpuMemoryUtilization,
            vramCapBytes: planned.threadVramCapBytes,
            promptCache: config.promptCache,
            embeddings: model.settings.embeddings,
            deltaWindowMs: config.deltaWindowMs,
            spares,
            log,
          }),
        startWorker: (hosted, pool) =>
          createModelWorker({
            pool,
            publisher,
            cancellations: gpuWorker.#cancellations,
            keyRing,
            metrics: options.metrics,
            log,
            connection: redis,
            names,
            workerId: gpuWorker.id,
            lockMs: config.jobLockMs,
            onJobStarted: () => host.touch(pool.name),
            onJobEnded: () => gpuWorker.#scheduler?.wake(),
            loadMs: (enqueuedAt) => waitedForLoadMs(hosted, enqueuedAt),
          }),
        stopModel: (worker, pool, recycle) =>
          closeModelWorker(worker, pool, {
            abortAll: () => gpuWorker.#cancellations.cancelAll(),
            drainMs: config.shutdownTimeoutMs,
            recycle,
            log,
          }),
        metrics: options.metrics,
        log,
      });
      gpuWorker.#host = host;
      gpuWorker.#scheduler = new ModelScheduler({
        host,
        redis,
        names,
        workerId: gpuWorker.id,
        keepAliveMs: config.keepAliveMs,
        maxSwapWaitMs: config.maxSwapWaitMs,
        log,
      });
      progress.step("loading the models it preloads");
      await gpuWorker.#scheduler.start();
      const loaded = new Set(host.hosted.map((hosted) => hosted.name));
      log.info("gpu-worker ready", {
        id: gpuWorker.id,
        loaded: [...loaded].join(",") || "none",
        cold:
          models
            .filter((model) => !loaded.has(model.name))
            .map((m) => m.name)
            .join(",") || "none",
        budgetBytes: host.budgetBytes,
        usedBytes: host.usedBytes,
      });
    } catch (error) {
      await gpuWorker.close();
      throw error;
    } finally {
      progress.end();
    }
    return gpuWorker;
  }

  /** The models loaded here now, and how many jobs each can run at once. */
  get models(): { name: string; capacity: number; contextSize: number }[] {
    return (this.#host?.hosted ?? []).flatMap(({ pool }) =>
      pool === undefined
        ? []
        : [{ name: pool.name, capacity: pool.capacity, contextSize: pool.contextSize }],
    );
  }

  /**
   * What this gpu-worker holds for jobs now, by holder: the cancel handles (`cancellations`), the
   * pools' running jobs (`pools`) and the jobs open in the model threads by their latest reports
   * (`threads`). Each is back to 0 when idle; one that is not holds something per job.
   */
  get jobsHeld(): { cancellations: number; pools: number; threads: number } {
    return {
      cancellations: this.#cancellations.size,
      pools: (this.#host?.hosted ?? []).reduce((sum, { pool }) => sum + (pool?.running ?? 0), 0),
      threads: this.threadStats.reduce((sum, stats) => sum + stats.jobs, 0),
    };
  }

  /** The latest report of every model thread (memory, jobs, prompt cache). */
  get threadStats(): ThreadStatsReport[] {
    return this.#host?.threadStats ?? [];
  }

  /**
   * Stops taking jobs, lets running ones finish for up to `SHUTDOWN_TIMEOUT_MS` (then cancels
   * them, which ends them within milliseconds), stops the threads and closes Redis. Whatever state
   * Redis is in, it resolves a few seconds after `SHUTDOWN_TIMEOUT_MS` at most: every step that
   * waits on Redis is bounded (`redisCloseGraceMs`), and past its bound is given up on (logged).
   */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      // Marked draining first (the first command sent): orchestrators stop sending this
      // gpu-worker's models new jobs (unless another gpu-worker serves them) while its running
      // jobs finish, and do not take them for lost. Not awaited before the drain, so a dead Redis
      // delays neither. Out of the registry once the jobs are done.
      const marked = this.#registry.drain();
      // A load under way finishes first: its threads must not be stopped while they load.
      await this.#scheduler?.close();
      const drain = new JobsDrain(this.#cancellations, this.#shutdownTimeoutMs, this.#log);
      const drained = Promise.allSettled(
        (this.#host?.hosted ?? []).flatMap(({ worker, pool }) =>
          worker === undefined || pool === undefined
            ? []
            : [
                closeModelWorker(worker, pool, {
                  abortAll: () => drain.abortAll(),
                  drainMs: this.#shutdownTimeoutMs,
                  log: this.#log,
                }),
              ],
        ),
      );
      await Promise.all([marked, drained, this.#spares?.close()]);
      drain.ended();
      await Promise.all([this.#registry.close(), this.#cancellations.close()]);
      await Promise.all([
        closeRedis(this.#redis),
        closeRedis(this.#subscriber),
        closeRedis(this.#replies),
      ]);
      this.#log.info("gpu-worker stopped");
    })();
    return this.#closing;
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}

/**
 * How long a job waited for its model to load here: from when it was queued (or the load began,
 * if later) to when the model was ready; 0 for a job queued after that.
 */
function waitedForLoadMs(hosted: HostedModel, enqueuedAt: number): number {
  const readyAt = hosted.readyAt ?? Date.now();
  if (enqueuedAt >= readyAt) return 0;
  return Math.max(0, readyAt - Math.max(enqueuedAt, hosted.loadStartedAt));
}
