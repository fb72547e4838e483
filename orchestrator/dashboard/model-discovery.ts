import { isValidModelName } from "../../shared/models/model-spec.js";
import type { RedisNames } from "../../shared/naming.js";
import { type RedisClient, scanKeys } from "../../shared/redis/index.js";

/** Keys asked for per SCAN call: a few round trips even with many kept jobs. */
const scanCount = 1000;

/**
 * The models a deployment's Redis knows, so that the dashboard needs no `MODELS` of its own:
 * those in the model registry (a gpu-worker serves them, or did within its TTL) and those with a
 * BullMQ queue (an orchestrator opened it), under the deployment's prefix, plus the ones it is
 * told of. Read with SCAN, so it never blocks Redis; on Redis Cluster it sees one node only.
 */
export class ModelDiscovery {
  readonly #redis: RedisClient;
  readonly #names: RedisNames;
  readonly #known: readonly string[];

  constructor(options: { redis: RedisClient; names: RedisNames; known: readonly string[] }) {
    this.#redis = options.redis;
    this.#names = options.names;
    this.#known = options.known;
  }

  /** Every model found, sorted; the known ones even when Redis holds nothing of them. */
  async find(): Promise<string[]> {
    const found = new Set(this.#known);
    for (const pattern of this.#names.modelKeyPatterns) {
      for await (const keys of scanKeys(this.#redis, pattern, scanCount)) {
        for (const key of keys) {
          const model = this.#names.modelOfKey(key);
          if (model !== undefined && isValidModelName(model)) found.add(model);
        }
      }
    }
    return [...found].sort();
  }
}
