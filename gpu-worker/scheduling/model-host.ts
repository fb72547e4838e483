import type { Worker } from "bullmq";
import { messageOf } from "../../shared/errors/index.js";
import type { Logger } from "../../shared/log.js";
import type { ThreadStatsReport } from "../../shared/protocol/index.js";
import type { PlannedModel } from "../memory/memory-plan.js";
import type { ResolvedModel } from "../models/resolve-models.js";
import type { ModelPool } from "../pool/model-pool.js";
import type { RegistryPublisher } from "../registry/registry-publisher.js";

/** A model of this gpu-worker's catalogue: its files, its settings and its line of the plan. */
export interface CatalogueModel {
  readonly model: ResolvedModel;
  readonly planned: PlannedModel;
}

/** Why a model was loaded or unloaded (the log line and the metrics say it). */
export type LoadReason = "preload" | "demand" | "join";
export type UnloadReason = "idle" | "pressure" | "swap" | "shutdown";

/** A model loaded (or loading) here. */
export interface HostedModel {
  readonly name: string;
  readonly bytes: number;
  readonly pin: boolean;
  /** Epoch ms: when its load began, and when it was ready (undefined while loading). */
  readonly loadStartedAt: number;
  readyAt: number | undefined;
  /** Epoch ms of the last job it started (its load, before any). */
  lastUsedAt: number;
  /** Jobs it started since it was loaded: how much it is used. */
  jobsStarted: number;
  /** Taking no new jobs: on its way out. */
  draining: boolean;
  pool: ModelPool | undefined;
  worker: Worker | undefined;
}

export interface ModelHostOptions {
  catalogue: readonly CatalogueModel[];
  budgetBytes: number;
  device: "gpu" | "cpu";
  registry: RegistryPublisher;
  /** Starts a model's pool (its threads load the model). */
  startPool: (entry: CatalogueModel) => Promise<ModelPool>;
  /** Starts taking a loaded model's jobs (its BullMQ worker). */
  startWorker: (hosted: HostedModel, pool: ModelPool) => Worker;
  /**
   * Stops taking a model's jobs, lets the running ones end, and lets its threads go (`recycle`:
   * another model loads next, they wait for it).
   */
  stopModel: (worker: Worker, pool: ModelPool, recycle: boolean) => Promise<void>;
  metrics?:
    | {
        modelLoaded(model: string, capacity: number, reason: LoadReason, seconds: number): void;
        modelUnloaded(model: string, reason: UnloadReason): void;
      }
    | undefined;
  log: Logger;
}

/**
 * The models one gpu-worker holds now, against its memory budget (the memory plan's figure for
 * each model, so what is loaded never adds up to more than the budget): loads a model of its
 * catalogue (its threads, then its queue worker; `loading`, then `ready` in the registry) and
 * unloads one (`cold` at once, its queue worker closed after its running jobs, its threads
 * stopped, which frees their memory). Which model to load or unload, and when, is the
 * scheduler's (`model-scheduler.ts`); one change at a time is its to ensure.
 */
export class ModelHost {
  readonly #options: ModelHostOptions;
  readonly #hosted = new Map<string, HostedModel>();

  constructor(options: ModelHostOptions) {
    this.#options = options;
  }

  get catalogue(): readonly CatalogueModel[] {
    return this.#options.catalogue;
  }

  get budgetBytes(): number {
    return this.#options.budgetBytes;
  }

  /** What the loaded and loading models use, by the plan. */
  get usedBytes(): number {
    let used = 0;
    for (const hosted of this.#hosted.values()) used += hosted.bytes;
    return used;
  }

  get freeBytes(): number {
    return this.#options.budgetBytes - this.usedBytes;
  }

  /** The models loaded or loading here. */
  get hosted(): readonly HostedModel[] {
    return [...this.#hosted.values()];
  }

  get(name: string): HostedModel | undefined {
    return this.#hosted.get(name);
  }

  entry(name: string): CatalogueModel | undefined {
    return this.#options.catalogue.find((entry) => entry.model.name === name);
  }

  /** Jobs running on a model here now. */
  running(name: string): number {
    return this.#hosted.get(name)?.pool?.running ?? 0;
  }

  /** Every loaded model's threads' latest reports. */
  get threadStats(): ThreadStatsReport[] {
    return this.hosted.flatMap((hosted) => hosted.pool?.threadStats ?? []);
  }

  /**
   * Loads a model of the catalogue; resolves once it takes jobs. On failure it is `cold` again and
   * the error is thrown. The caller made room for it.
   */
  async load(name: string, reason: LoadReason): Promise<HostedModel> {
    const { registry, log, startPool, startWorker, metrics } = this.#options;
    const entry = this.entry(name);
    if (entry === undefined) throw new Error(`model "${name}" is not in the catalogue`);
    const existing = this.#hosted.get(name);
    if (existing !== undefined) return existing;
    const hosted: HostedModel = {
      name,
      bytes: entry.planned.totalBytes,
      pin: entry.model.settings.pin,
      loadStartedAt: Date.now(),
      readyAt: undefined,
      lastUsedAt: Date.now(),
      jobsStarted: 0,
      draining: false,
      pool: undefined,
      worker: undefined,
    };
    this.#hosted.set(name, hosted);
    this.#publishBudget();
    const started = performance.now();
    log.info("loading model", {
      model: name,
      reason,
      threads: entry.model.settings.threads,
      bytes: hosted.bytes,
      freeBytes: this.freeBytes,
    });
    try {
      await registry.announce([name], "loading");
      const pool = await startPool(entry);
      hosted.pool = pool;
      hosted.worker = startWorker(hosted, pool);
      hosted.readyAt = Date.now();
      await registry.announce([name], "ready", {
        contextSize: pool.contextSize,
        maxTokenBytes: pool.maxTokenBytes,
      });
      const seconds = (performance.now() - started) / 1000;
      metrics?.modelLoaded(name, pool.capacity, reason, seconds);
      log.info("model ready", {
        model: name,
        reason,
        loadMs: Math.round(seconds * 1000),
        concurrency: pool.capacity,
        contextSize: pool.contextSize,
        llamaThreads: entry.model.settings.llamaThreads,
        usedBytes: this.usedBytes,
        budgetBytes: this.budgetBytes,
      });
      return hosted;
    } catch (error) {
      log.error("model failed to load", { model: name, reason, error: messageOf(error) });
      await this.#release(hosted);
      await registry.announce([name], "cold").catch(() => {});
      throw error;
    }
  }

  /**
   * Stops taking a model's jobs (its running ones go on), so it can be unloaded once they end:
   * `cold` in the registry for the pool, its queue worker paused here.
   */
  async stopTaking(name: string): Promise<void> {
    const hosted = this.#hosted.get(name);
    if (hosted?.worker === undefined || hosted.draining) return;
    hosted.draining = true;
    await hosted.worker.pause(true);
    await this.#options.registry.announce([name], "cold");
    this.#options.log.info("model takes no new jobs: to be unloaded once its running ones end", {
      model: name,
      running: this.running(name),
    });
  }

  /** Takes a model's jobs again after {@link stopTaking} (the need for its room went away). */
  async resumeTaking(name: string): Promise<void> {
    const hosted = this.#hosted.get(name);
    if (hosted?.worker === undefined || hosted.pool === undefined || !hosted.draining) return;
    hosted.draining = false;
    await hosted.worker.resume();
    await this.#options.registry.announce([name], "ready", {
      contextSize: hosted.pool.contextSize,
      maxTokenBytes: hosted.pool.maxTokenBytes,
    });
    this.#options.log.info("model takes jobs again", { model: name });
  }

  /** A model of the catalogue that is not loaded here: `cold` in the registry (it can be loaded). */
  async markCold(name: string): Promise<void> {
    if (this.#hosted.has(name)) return;
    await this.#options.registry.announce([name], "cold");
  }

  /** A job of a model started here: it counts as used now. */
  touch(name: string): void {
    const hosted = this.#hosted.get(name);
    if (hosted === undefined) return;
    hosted.lastUsedAt = Date.now();
    hosted.jobsStarted += 1;
  }

  /**
   * Unloads a model: `cold` in the registry at once (no new job reaches it here), its running
   * jobs let end, its threads stopped (their memory freed). `idleMs` is logged.
   */
  async unload(name: string, reason: UnloadReason): Promise<void> {
    const hosted = this.#hosted.get(name);
    if (hosted === undefined) return;
    const idleMs = Date.now() - hosted.lastUsedAt;
    if (reason !== "shutdown" && !hosted.draining) {
      await this.#options.registry.announce([name], "cold");
    }
    hosted.draining = true;
    await this.#release(hosted, reason === "pressure" || reason === "swap");
    this.#options.metrics?.modelUnloaded(name, reason);
    this.#options.log.info("model unloaded", {
      model: name,
      reason,
      idleMs,
      jobsStarted: hosted.jobsStarted,
      usedBytes: this.usedBytes,
      budgetBytes: this.budgetBytes,
    });
  }

  /** Stops a hosted model's worker and threads, and forgets it. */
  async #release(hosted: HostedModel, recycle = false): Promise<void> {
    try {
      if (hosted.worker !== undefined && hosted.pool !== undefined) {
        await this.#options.stopModel(hosted.worker, hosted.pool, recycle);
      } else {
        await hosted.pool?.close();
      }
    } finally {
      this.#hosted.delete(hosted.name);
      this.#publishBudget();
    }
  }

  /** The registry's line for this gpu-worker: its budget and what the hosted models use. */
  #publishBudget(): void {
    this.#options.registry.setBudget({
      device: this.#options.device,
      budgetBytes: this.budgetBytes,
      usedBytes: this.usedBytes,
    });
  }
}
