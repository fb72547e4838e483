/**
 * A real orchestrator in the test's own process, on real Redis under a prefix of its own: the
 * set-up the http, redis and model tiers share. Optionally a gpu-worker's registry entry written by
 * the gpu-worker's own publisher (no model loaded), and the local API on a free port. `close()`
 * takes it all down in reverse order and deletes every key under the prefix.
 */
import { Queue } from "bullmq";
import type { FastifyInstance } from "fastify";
import type { Redis } from "ioredis";
import { RegistryPublisher } from "../../gpu-worker/registry/registry-publisher.js";
import { createLocalApi } from "../../orchestrator/local-api/local-api.js";
import { Orchestrator } from "../../orchestrator/orchestrator.js";
import type { Env } from "../../shared/config/env-readers.js";
import type { Config } from "../../shared/config/index.js";
import { FernetKey, KeyRing } from "../../shared/crypto/index.js";
import { createLogger, type Logger } from "../../shared/log.js";
import { RedisNames } from "../../shared/naming.js";
import { closeRedis, createRedis } from "../../shared/redis/index.js";
import type { ModelState } from "../../shared/registry/model-registry.js";
import { testConfig } from "./config.js";
import { deleteKeysWithPrefix, testRedisUrl, uniquePrefix } from "./redis.js";

export interface InProcessOrchestratorOptions {
  /** Names the Redis prefix: `t-<label>-<random>`. */
  label: string;
  /** Settings beyond `REDIS_URL`, `REDIS_PREFIX` and `ENCRYPTION_KEY` (a fresh key), as variables. */
  env?: Env;
  /**
   * A gpu-worker's registry entry for these models, written before the orchestrator starts (by
   * worker `loading-gpu-worker`, 30 s TTL). Default: none.
   */
  announce?: { models: readonly string[]; state: ModelState };
  /** Serves the local API on a free port of 127.0.0.1, with the API key if given. Default: no API. */
  api?: boolean | { apiKey: string };
  /** Default: errors only. */
  log?: Logger;
}

export class InProcessOrchestrator {
  readonly names: RedisNames;
  readonly keyRing: KeyRing;
  readonly config: Config;
  /** The first orchestrator; {@link addOrchestrator} starts more on the same prefix. */
  orchestrator!: Orchestrator;
  /** The publisher that wrote `announce`, if asked for. */
  registry: RegistryPublisher | undefined;
  readonly #orchestrators: Orchestrator[] = [];
  #api: FastifyInstance | undefined;
  #base: string | undefined;
  /** Run last first, after the orchestrators closed and before the keys are deleted. */
  readonly #closers: (() => unknown)[] = [];
  #closing: Promise<void> | undefined;

  private constructor(
    readonly redisUrl: string,
    readonly prefix: string,
    readonly log: Logger,
    env: Env,
  ) {
    this.names = new RedisNames(prefix);
    const key = FernetKey.generate().exportKey();
    this.keyRing = KeyRing.parse(key);
    this.config = testConfig({
      ...env,
      REDIS_URL: redisUrl,
      REDIS_PREFIX: prefix,
      ENCRYPTION_KEY: key,
    });
  }

  static async start(options: InProcessOrchestratorOptions): Promise<InProcessOrchestrator> {
    const redisUrl = await testRedisUrl();
    const log = options.log ?? createLogger("test", { level: "error" });
    const started = new InProcessOrchestrator(
      redisUrl,
      uniquePrefix(options.label),
      log,
      options.env ?? {},
    );
    try {
      if (options.announce !== undefined) {
        started.registry = started.publisher("loading-gpu-worker", 30_000).publisher;
        await started.registry.announce(options.announce.models, options.announce.state);
      }
      started.orchestrator = await started.addOrchestrator();
      if (options.api !== undefined && options.api !== false) {
        const apiKey = options.api === true ? undefined : options.api.apiKey;
        started.#api = createLocalApi({ orchestrator: started.orchestrator, apiKey, log });
        started.#base = await started.#api.listen({ host: "127.0.0.1", port: 0 });
      }
    } catch (error) {
      await started.close();
      throw error;
    }
    return started;
  }

  /** The local API's address, `http://127.0.0.1:<port>`. */
  get base(): string {
    if (this.#base === undefined) throw new Error("started without the local API");
    return this.#base;
  }

  /** Starts another orchestrator on the same Redis, prefix and configuration. */
  async addOrchestrator(): Promise<Orchestrator> {
    const { config, keyRing, redisUrl, log } = this;
    const orchestrator = await Orchestrator.start({ config, keyRing, redisTarget: redisUrl, log });
    this.#orchestrators.push(orchestrator);
    return orchestrator;
  }

  /** A gpu-worker's registry publisher on a connection of its own (no model behind it). */
  publisher(workerId: string, ttlMs: number): { publisher: RegistryPublisher; redis: Redis } {
    const redis = createRedis(this.redisUrl, `test-${workerId}`, this.log);
    const publisher = new RegistryPublisher({
      redis,
      names: this.names,
      workerId,
      ttlMs,
      log: this.log,
    });
    this.onClose(() => closeRedis(redis));
    this.onClose(() => publisher.close());
    return { publisher, redis };
  }

  /** A BullMQ handle on one model's queue, to read what the orchestrator queued. */
  queue(model: string): Queue {
    const url = new URL(this.redisUrl);
    const queue = new Queue(this.names.modelQueue(model), {
      connection: { host: url.hostname, port: Number(url.port) },
      prefix: this.names.bullPrefix,
    });
    this.onClose(() => queue.close());
    return queue;
  }

  /** Closes `close` with the rest: after the orchestrators, before the keys are deleted. */
  onClose(close: () => unknown): void {
    this.#closers.push(close);
  }

  /** Idempotent: the API, the orchestrators, what {@link onClose} added (last first), the keys. */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      await this.#api?.close();
      await Promise.all(this.#orchestrators.map((orchestrator) => orchestrator.close()));
      for (const close of this.#closers.reverse()) await close();
      await deleteKeysWithPrefix(this.redisUrl, this.prefix);
    })();
    return this.#closing;
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}
