import { randomUUID } from "node:crypto";
import type { Worker } from "bullmq";
import type { Redis } from "ioredis";
import type { Config } from "../shared/config/index.js";
import type { KeyRing } from "../shared/crypto/index.js";
import type { Logger } from "../shared/log.js";
import { RedisNames } from "../shared/naming.js";
import type { ThreadStatsReport } from "../shared/protocol/index.js";
import { closeRedis, createRedis } from "../shared/redis/index.js";
import { checkMemory } from "./memory/check-memory.js";
import type { WorkerMetrics } from "./metrics/worker-metrics.js";
import { resolveModels } from "./models/resolve-models.js";
import { ModelPool } from "./pool/model-pool.js";
import { ReplyPublisher } from "./publish/reply-publisher.js";
import { Cancellations } from "./queue/cancellations.js";
import { JobsDrain } from "./queue/jobs-drain.js";
import { closeModelWorker, createModelWorker } from "./queue/model-worker.js";
import { RegistryPublisher } from "./registry/registry-publisher.js";

export interface GpuWorkerOptions {
  config: Config;
  keyRing: KeyRing;
  redisUrl: string;
  /** Where its jobs are counted (`METRICS_PORT`); none when unset. */
  metrics?: WorkerMetrics;
  log: Logger;
}

interface ServedModel {
  pool: ModelPool;
  worker: Worker;
}

/**
 * The model host: for each served model a pool of threads holding it and a BullMQ Worker taking
 * jobs from its queue; replies go back through Redis; cancels come in on the control channel.
 */
export class GpuWorker {
  readonly #redis: Redis;
  readonly #subscriber: Redis;
  readonly #replies: Redis;
  readonly #cancellations: Cancellations;
  readonly #registry: RegistryPublisher;
  readonly #served: ServedModel[] = [];
  readonly #log: Logger;
  readonly #shutdownTimeoutMs: number;
  #closing: Promise<void> | undefined;

  private constructor(options: GpuWorkerOptions, redis: Redis, subscriber: Redis, replies: Redis) {
    this.#redis = redis;
    this.#subscriber = subscriber;
    this.#replies = replies;
    this.#log = options.log;
    this.#shutdownTimeoutMs = options.config.shutdownTimeoutMs;
    const names = new RedisNames(options.config.redisPrefix);
    this.#cancellations = new Cancellations({ redis, subscriber, names, log: options.log });
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
   * memory, loads every model, then starts taking jobs and announces each model `ready`. Rejects
   * (after cleaning up, which withdraws the announcements) if the plan does not fit or a model
   * fails to load; nothing is loaded when the plan does not fit.
   */
  static async start(options: GpuWorkerOptions): Promise<GpuWorker> {
    const { config, keyRing, log } = options;
    const names = new RedisNames(config.redisPrefix);
    const redis = createRedis(options.redisUrl, "gpu-worker", log);
    const subscriber = createRedis(options.redisUrl, "gpu-worker-control", log);
    // The jobs' claims and replies have a connection of their own: they never wait behind
    // BullMQ's commands (its fetch of the next job), and a pipeline on it is cheap (ioredis copies
    // every script defined on a connection, BullMQ's 64, into each pipeline it starts there).
    const replies = createRedis(options.redisUrl, "gpu-worker-replies", log);
    const gpuWorker = new GpuWorker(options, redis, subscriber, replies);
    try {
      log.info("gpu-worker starting", { id: gpuWorker.id });
      await gpuWorker.#registry.announce(
        config.served.map((model) => model.name),
        "loading",
      );
      const models = await resolveModels(config, log);
      const plan = await checkMemory(models, config, log);
      await gpuWorker.#cancellations.start();
      const publisher = new ReplyPublisher({
        redis: replies,
        names,
        keyRing,
        streamTtlSeconds: Math.ceil(config.jobTimeoutMs / 1000) + 300,
        workerId: gpuWorker.id,
        log,
      });
      for (const model of models) {
        const { settings } = model;
        const planned = plan.models.find((line) => line.name === model.name);
        log.info("loading model", { model: model.name, threads: settings.threads });
        const pool = await ModelPool.start({
          model,
          threads: settings.threads,
          sequences: settings.sequences,
          llamaThreads: settings.llamaThreads,
          contextSize: planned?.contextSize ?? settings.contextSize,
          gpu: config.gpu,
          gpuMemoryUtilization: config.gpuMemoryUtilization,
          vramCapBytes: planned?.threadVramCapBytes,
          promptCache: config.promptCache,
          deltaWindowMs: config.deltaWindowMs,
          log,
        });
        const worker = createModelWorker({
          pool,
          publisher,
          cancellations: gpuWorker.#cancellations,
          keyRing,
          metrics: options.metrics,
          log,
          connection: redis,
          names,
          lockMs: config.jobLockMs,
        });
        gpuWorker.#served.push({ pool, worker });
        options.metrics?.modelLoaded(model.name, pool.capacity);
        await gpuWorker.#registry.announce([model.name], "ready", {
          contextSize: pool.contextSize,
          maxTokenBytes: pool.maxTokenBytes,
        });
        log.info("model ready", {
          model: model.name,
          queue: names.modelQueue(model.name),
          concurrency: pool.capacity,
          contextSize: pool.contextSize,
          llamaThreads: settings.llamaThreads,
        });
      }
    } catch (error) {
      await gpuWorker.close();
      throw error;
    }
    return gpuWorker;
  }

  /** Model names and how many jobs each can run at once. */
  get models(): { name: string; capacity: number; contextSize: number }[] {
    return this.#served.map(({ pool }) => ({
      name: pool.name,
      capacity: pool.capacity,
      contextSize: pool.contextSize,
    }));
  }

  /**
   * What this gpu-worker holds for jobs now, by holder: the cancel handles (`cancellations`), the
   * pools' running jobs (`pools`) and the jobs open in the model threads by their latest reports
   * (`threads`). Each is back to 0 when idle; one that is not holds something per job.
   */
  get jobsHeld(): { cancellations: number; pools: number; threads: number } {
    return {
      cancellations: this.#cancellations.size,
      pools: this.#served.reduce((sum, { pool }) => sum + pool.running, 0),
      threads: this.threadStats.reduce((sum, stats) => sum + stats.jobs, 0),
    };
  }

  /** The latest report of every model thread (memory, jobs, prompt cache). */
  get threadStats(): ThreadStatsReport[] {
    return this.#served.flatMap(({ pool }) => pool.threadStats);
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
      const drain = new JobsDrain(this.#cancellations, this.#shutdownTimeoutMs, this.#log);
      const drained = Promise.allSettled(
        this.#served.map(({ worker, pool }) =>
          closeModelWorker(worker, pool, {
            abortAll: () => drain.abortAll(),
            drainMs: this.#shutdownTimeoutMs,
            log: this.#log,
          }),
        ),
      );
      await Promise.all([marked, drained]);
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
