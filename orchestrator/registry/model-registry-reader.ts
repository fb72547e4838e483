import type { Logger } from "../../shared/log.js";
import type { RedisNames } from "../../shared/naming.js";
import { promptBytesLimit } from "../../shared/protocol/index.js";
import type { RedisClient } from "../../shared/redis/index.js";
import {
  type GpuWorkerInfo,
  type ModelState,
  parseGpuWorkerInfo,
  parseRegistryEntry,
  redisTimeMs,
} from "../../shared/registry/model-registry.js";

/** Who serves one model right now, by the registry. */
export interface ModelServing {
  /**
   * `ready` if a live gpu-worker has it loaded, `loading` if one is loading it, `cold` if none has
   * it but one can load it (a job for it waits for the load), else `unavailable`.
   */
  state: Exclude<ModelState, "draining"> | "unavailable";
  /** Live gpu-workers serving it (loading or ready). */
  workers: number;
  /** Those of them that have it loaded. */
  ready: number;
  /** Live gpu-workers that have it in their catalogue, not loaded (they can load it). */
  cold?: number;
  /** Their ids. */
  workerIds: string[];
  /**
   * The largest prompt, in bytes, any of the gpu-workers that have it loaded could fit (and the
   * context size that gives it); `undefined` when one of them did not tell (see
   * `protocol/prompt-bytes.ts`) or none has it loaded.
   */
  promptLimit?: { bytes: number; contextSize: number } | undefined;
}

/**
 * The orchestrator's side of the model registry: reads, in one round trip, which live gpu-workers
 * serve each model (entries past their expiry, by Redis time, are dead and get deleted).
 */
export class ModelRegistryReader {
  /** Each model's last answer of {@link servingRecently}, and the read that gave it. */
  readonly #recent = new Map<string, { at: number; serving: Promise<ModelServing> }>();

  constructor(private readonly options: { redis: RedisClient; names: RedisNames; log: Logger }) {}

  async read(models: readonly string[]): Promise<Map<string, ModelServing>> {
    const { redis, names, log } = this.options;
    const pipeline = redis.pipeline().time();
    for (const model of models) pipeline.hgetall(names.modelRegistry(model));
    const results = (await pipeline.exec()) ?? [];
    const [timeError, time] = results[0] ?? [];
    if (timeError) throw timeError;
    const now = redisTimeMs(time as string[]);
    const out = new Map<string, ModelServing>();
    const dead: [string, string][] = [];
    models.forEach((model, index) => {
      const [error, hash] = results[index + 1] ?? [];
      if (error) throw error;
      const serving: ModelServing = {
        state: "unavailable",
        workers: 0,
        ready: 0,
        workerIds: [],
      };
      let limits: { bytes: number; contextSize: number }[] | undefined = [];
      for (const [workerId, value] of Object.entries((hash ?? {}) as Record<string, string>)) {
        const entry = parseRegistryEntry(value);
        if (entry === undefined || entry.expiresAt <= now) {
          dead.push([names.modelRegistry(model), workerId]);
          continue;
        }
        // Alive but shutting down: it finishes its jobs and takes no new ones.
        if (entry.state === "draining") continue;
        if (entry.state === "cold") {
          serving.cold = (serving.cold ?? 0) + 1;
          if (serving.state === "unavailable") serving.state = "cold";
          continue;
        }
        serving.workers += 1;
        if (entry.state === "ready") {
          serving.ready += 1;
          const bytes = promptBytesLimit(entry.contextSize ?? 0, entry.maxTokenBytes);
          if (bytes === undefined || entry.contextSize === undefined) limits = undefined;
          else limits?.push({ bytes, contextSize: entry.contextSize });
        }
        serving.workerIds.push(workerId);
        if (entry.state === "ready" || serving.state !== "ready") serving.state = entry.state;
      }
      serving.promptLimit = limits?.reduce<ModelServing["promptLimit"]>(
        (largest, limit) =>
          largest === undefined || limit.bytes > largest.bytes ? limit : largest,
        undefined,
      );
      out.set(model, serving);
    });
    // Every read brings admission's answers up to date (see `servingRecently`).
    const readAt = performance.now();
    for (const [model, serving] of out) {
      if (serving.state === "unavailable") this.#recent.delete(model);
      else this.#recent.set(model, { at: readAt, serving: Promise.resolve(serving) });
    }
    if (dead.length > 0) {
      const cleanup = redis.pipeline();
      for (const [key, field] of dead) cleanup.hdel(key, field);
      cleanup
        .exec()
        .catch((error: Error) =>
          log.warn("could not delete lapsed registry entries", { error: error.message }),
        );
    }
    return out;
  }

  /**
   * One model's serving state as read at most `maxAgeMs` ago, when that read found it served; a
   * read under way is shared. Admission asks this for every request: at most one registry read per
   * model and interval, whatever the request rate. A model found unavailable is read anew each time,
   * so it is admitted again as soon as a gpu-worker serves it; any other read (`/health`, the
   * watch of gpu-workers) updates the answer too.
   */
  servingRecently(model: string, maxAgeMs: number): Promise<ModelServing> {
    const now = performance.now();
    const recent = this.#recent.get(model);
    if (recent !== undefined && now - recent.at <= maxAgeMs) return recent.serving;
    const serving = this.serving(model);
    const entry = { at: now, serving };
    this.#recent.set(model, entry);
    const forget = () => {
      if (this.#recent.get(model) === entry) this.#recent.delete(model);
    };
    serving.then((found) => found.state === "unavailable" && forget(), forget);
    return serving;
  }

  /** The live gpu-workers' budgets and what they hold (the `gpu-workers` hash), by id. */
  async gpuWorkers(): Promise<Map<string, Omit<GpuWorkerInfo, "expiresAt">>> {
    const { redis, names } = this.options;
    const [[timeError, time] = [], [error, hash] = []] =
      (await redis.pipeline().time().hgetall(names.gpuWorkers).exec()) ?? [];
    if (timeError) throw timeError;
    if (error) throw error;
    const now = redisTimeMs(time as string[]);
    const out = new Map<string, Omit<GpuWorkerInfo, "expiresAt">>();
    for (const [id, value] of Object.entries((hash ?? {}) as Record<string, string>)) {
      const info = parseGpuWorkerInfo(value);
      if (info === undefined || info.expiresAt <= now) continue;
      const { expiresAt: _expiresAt, ...rest } = info;
      out.set(id, rest);
    }
    return out;
  }

  /** One model's serving state. */
  async serving(model: string): Promise<ModelServing> {
    return (
      (await this.read([model])).get(model) ?? {
        state: "unavailable",
        workers: 0,
        ready: 0,
        workerIds: [],
      }
    );
  }
}
