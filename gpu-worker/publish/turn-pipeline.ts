import type { ChainableCommander, Redis } from "ioredis";

/**
 * The Redis commands issued during one turn of the event loop, sent as one pipeline when the turn
 * ends: the replies of every job that flushed in that turn reach Redis in one write, and the
 * orchestrator reads them in one read. Commands keep their order (one connection, one pipeline).
 */
export class TurnPipeline {
  readonly #redis: Redis;
  #pipeline: ChainableCommander | undefined;
  #sent: Promise<[Error | null, unknown][] | null> | undefined;

  constructor(redis: Redis) {
    this.#redis = redis;
  }

  /**
   * Adds commands to this turn's pipeline. Resolves once Redis answered them: with the first error
   * among them, or `undefined`. Never rejects.
   */
  add(build: (pipeline: ChainableCommander) => void): Promise<Error | undefined> {
    return this.results(build).then(
      (results) => results.find(([error]) => error !== null)?.[0] ?? undefined,
      (error: Error) => error,
    );
  }

  /**
   * Like {@link add}, but resolves with the `[error, result]` of each of its commands, in order;
   * rejects when the pipeline as a whole failed.
   */
  results(build: (pipeline: ChainableCommander) => void): Promise<[Error | null, unknown][]> {
    if (this.#pipeline === undefined || this.#sent === undefined) {
      const pipeline = this.#redis.pipeline();
      this.#pipeline = pipeline;
      this.#sent = new Promise((resolve, reject) => {
        queueMicrotask(() => {
          this.#pipeline = undefined;
          this.#sent = undefined;
          pipeline.exec().then(resolve, reject);
        });
      });
    }
    const first = this.#pipeline.length;
    build(this.#pipeline);
    const last = this.#pipeline.length;
    return this.#sent.then((results) => results?.slice(first, last) ?? []);
  }
}
