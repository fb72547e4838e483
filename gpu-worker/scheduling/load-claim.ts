import type { RedisNames } from "../../shared/naming.js";
import type { RedisClient } from "../../shared/redis/index.js";

/** How long a load claim lives without being refreshed: a gpu-worker that dies mid-load frees it. */
export const loadClaimTtlMs = 15_000;

/** Refreshes a claim's expiry if it is still `ARGV[1]`'s. KEYS: the claim; ARGV: holder, ttl. */
const refreshScript = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
`;

/** Takes a claim from a holder that is gone: sets it if it still is `ARGV[1]`'s. */
const takeOverScript = `
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
  return 1
end
return 0
`;

/** Deletes a claim if it is still `ARGV[1]`'s. */
const releaseScript = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
`;

/**
 * The pool-wide claim on a model's load (`RedisNames.loadClaim`): one gpu-worker loads a model that
 * jobs wait for; the others see the claim and leave it. The claim expires unless its holder
 * refreshes it, so a gpu-worker that dies while loading frees it for another.
 */
export class LoadClaim {
  readonly #redis: RedisClient;
  readonly #key: string;
  readonly #holder: string;
  #timer: NodeJS.Timeout | undefined;

  private constructor(redis: RedisClient, key: string, holder: string) {
    this.#redis = redis;
    this.#key = key;
    this.#holder = holder;
  }

  /**
   * Claims a model's load for `holder`; `undefined` when another holds the claim. `gone`: the
   * holder of a claim whose gpu-worker is gone (its registry entry lapsed), taken over.
   */
  static async take(
    redis: RedisClient,
    names: RedisNames,
    model: string,
    holder: string,
    gone?: string,
  ): Promise<LoadClaim | undefined> {
    const key = names.loadClaim(model);
    const taken =
      gone === undefined
        ? (await redis.set(key, holder, "PX", loadClaimTtlMs, "NX")) === "OK"
        : (await redis.eval(takeOverScript, 1, key, gone, holder, loadClaimTtlMs)) === 1;
    if (!taken) return undefined;
    const claim = new LoadClaim(redis, key, holder);
    claim.#timer = setInterval(() => {
      redis.eval(refreshScript, 1, key, holder, loadClaimTtlMs).catch(() => {});
    }, loadClaimTtlMs / 3);
    claim.#timer.unref();
    return claim;
  }

  /** Gives the claim up (the load is done, or failed). Never throws. */
  async release(): Promise<void> {
    clearInterval(this.#timer);
    await this.#redis.eval(releaseScript, 1, this.#key, this.#holder).catch(() => {});
  }
}
