import type { ChainableCommander } from "ioredis";
import type { RedisClient } from "../../shared/redis/index.js";

interface Batch {
  pipeline: ChainableCommander;
  sent: Promise<[Error | null, unknown][] | null>;
}

/**
 * The Redis commands issued during one turn of the event loop, sent as one pipeline when the turn
 * ends: the replies of every job that flushed in that turn reach Redis in one write, and the
 * orchestrator reads them in one read. Commands keep their order (one connection, one pipeline).
 * On a cluster, a pipeline must stay on one node: each `group` (a job, whose keys share one hash
 * tag) gets a pipeline of its own per turn; on one server the group is ignored.
 */
export class TurnPipeline {
  readonly #redis: RedisClient;
  readonly #batches = new Map<string, Batch>();

  constructor(redis: RedisClient) {
    this.#redis = redis;
  }

  /**
   * Adds commands to this turn's pipeline. Resolves once Redis answered them: with the first error
   * among them, or `undefined`. Never rejects.
   */
  add(build: (pipeline: ChainableCommander) => void, group = ""): Promise<Error | undefined> {
    return this.results(build, group).then(
      (results) => results.find(([error]) => error !== null)?.[0] ?? undefined,
      (error: Error) => error,
    );
  }

  /**
   * Like {@link add}, but resolves with the `[error, result]` of each of its commands, in order;
   * rejects when the pipeline as a whole failed.
   */
  results(
    build: (pipeline: ChainableCommander) => void,
    group = "",
  ): Promise<[Error | null, unknown][]> {
    const key = this.#redis.isCluster ? group : "";
    let batch = this.#batches.get(key);
    if (batch === undefined) {
      const pipeline = this.#redis.pipeline();
      const sent = new Promise<[Error | null, unknown][] | null>((resolve, reject) => {
        queueMicrotask(() => {
          this.#batches.delete(key);
          pipeline.exec().then(resolve, reject);
        });
      });
      batch = { pipeline, sent };
      this.#batches.set(key, batch);
    }
    const first = batch.pipeline.length;
    build(batch.pipeline);
    const last = batch.pipeline.length;
    return batch.sent.then((results) => results?.slice(first, last) ?? []);
  }
}
