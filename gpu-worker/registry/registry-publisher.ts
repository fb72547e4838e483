import { messageOf } from "../../shared/errors/index.js";
import type { Logger } from "../../shared/log.js";
import type { RedisNames } from "../../shared/naming.js";
import { redisCloseGraceMs, settlesWithin } from "../../shared/process/deadline.js";
import type { RedisClient } from "../../shared/redis/index.js";
import {
  type LoadedModelInfo,
  type ModelState,
  registryHeartbeatScript,
} from "../../shared/registry/model-registry.js";

export interface RegistryPublisherOptions {
  redis: RedisClient;
  names: RedisNames;
  /** This gpu-worker's id (random, no secrets). */
  workerId: string;
  /** Entries lapse this long after the last heartbeat; heartbeats go out every third of it. */
  ttlMs: number;
  log: Logger;
}

/**
 * A gpu-worker's side of the model registry: announces each model of its catalogue (`cold` while
 * not loaded, `loading`, then `ready`, and `draining` when it shuts down) and, once told, its
 * memory budget and use; refreshes the entries on a heartbeat so they lapse if the process dies,
 * and deletes them when it stops.
 */
export class RegistryPublisher {
  readonly #options: RegistryPublisherOptions;
  readonly #states = new Map<string, ModelState>();
  readonly #loaded = new Map<string, LoadedModelInfo>();
  #budget: { device: string; budgetBytes: number; usedBytes: number } | undefined;
  #timer: NodeJS.Timeout | undefined;
  #beating: Promise<unknown> = Promise.resolve();
  #closing: Promise<void> | undefined;

  constructor(options: RegistryPublisherOptions) {
    this.#options = options;
    // Back from a lost connection (Redis may have restarted empty): the entries are written again
    // at once, not at the next heartbeat, once the first announce has started the heartbeat.
    options.redis.on("ready", () => {
      if (this.#timer === undefined) return;
      this.#beat().catch((error: Error) =>
        this.#options.log.warn("registry heartbeat failed", { error: error.message }),
      );
    });
  }

  get workerId(): string {
    return this.#options.workerId;
  }

  /**
   * Sets the state of models and writes it at once; starts the heartbeat on first use. `loaded`
   * tells, for a model announced `ready`, what bounds the prompts it can take.
   */
  async announce(
    models: readonly string[],
    state: ModelState,
    loaded?: LoadedModelInfo,
  ): Promise<void> {
    if (this.#closing) return;
    for (const model of models) {
      this.#states.set(model, state);
      if (loaded !== undefined) this.#loaded.set(model, loaded);
      else if (state === "cold") this.#loaded.delete(model);
    }
    this.#timer ??= setInterval(
      () => {
        this.#beat().catch((error: Error) =>
          this.#options.log.warn("registry heartbeat failed", { error: error.message }),
        );
      },
      Math.max(100, Math.floor(this.#options.ttlMs / 3)),
    );
    this.#timer.unref();
    await this.#beat();
  }

  /** Its memory budget and what the loaded models use: written with the next write. */
  setBudget(budget: { device: string; budgetBytes: number; usedBytes: number }): void {
    this.#budget = budget;
  }

  /**
   * Marks every model `draining` (written at once, and on each heartbeat after): orchestrators
   * stop sending this gpu-worker new jobs, yet see it alive, so its running jobs are not taken for
   * lost while they finish. Gives Redis up to `timeoutMs`; never throws (a failed write is logged).
   */
  async drain(timeoutMs = redisCloseGraceMs): Promise<void> {
    if (this.#closing || this.#states.size === 0) return;
    for (const model of this.#states.keys()) this.#states.set(model, "draining");
    let problem: string | undefined;
    const marked = this.#beat().catch((error: Error) => {
      problem = error.message;
    });
    if (!(await settlesWithin(marked, timeoutMs))) problem = "Redis did not answer";
    if (problem !== undefined) {
      this.#options.log.warn("could not mark this gpu-worker draining", { error: problem });
    }
  }

  #beat(): Promise<unknown> {
    if (this.#closing) return Promise.resolve();
    this.#beating = this.#write();
    return this.#beating;
  }

  async #write(): Promise<void> {
    const { redis, names, workerId, ttlMs } = this.#options;
    const models = [...this.#states.keys()];
    const info =
      this.#budget === undefined
        ? ""
        : JSON.stringify({ ...this.#budget, models: Object.fromEntries(this.#states) });
    await redis.eval(
      registryHeartbeatScript,
      models.length + 1,
      names.gpuWorkers,
      ...models.map((model) => names.modelRegistry(model)),
      ttlMs,
      workerId,
      info,
      ...models.flatMap((model) => {
        const loaded = this.#loaded.get(model);
        return [
          this.#states.get(model) ?? "loading",
          loaded?.contextSize ?? 0,
          loaded?.maxTokenBytes ?? 0,
        ];
      }),
    );
  }

  /**
   * Stops the heartbeat and deletes this gpu-worker's entries, giving Redis up to `timeoutMs` in
   * all (the heartbeat in flight, then the delete); past that the entries are left to lapse.
   * Never throws.
   */
  close(timeoutMs = redisCloseGraceMs): Promise<void> {
    this.#closing ??= (async () => {
      clearInterval(this.#timer);
      const { redis, names, workerId, log } = this.#options;
      const models = [...this.#states.keys()];
      if (models.length === 0) return;
      if (redis.status !== "ready") {
        // Not connected now: the delete would only wait out the grace; the entries lapse anyway.
        log.warn("Redis is not connected: this gpu-worker's registry entries will lapse");
        return;
      }
      let problem: string | undefined;
      const withdrawn = (async () => {
        // A heartbeat in flight must not write the entries back after they are deleted.
        await this.#beating.catch(() => {});
        const pipeline = redis.pipeline().hdel(names.gpuWorkers, workerId);
        for (const model of models) pipeline.hdel(names.modelRegistry(model), workerId);
        const failed = ((await pipeline.exec()) ?? []).find(([error]) => error !== null);
        if (failed?.[0]) problem = failed[0].message;
      })().catch((error: unknown) => {
        problem = messageOf(error);
      });
      if (!(await settlesWithin(withdrawn, timeoutMs))) problem = "Redis did not answer";
      if (problem !== undefined) {
        log.warn("could not remove this gpu-worker from the registry; its entries will lapse", {
          error: problem,
        });
      }
    })();
    return this.#closing;
  }
}
