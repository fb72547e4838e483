import { createBullBoard } from "@bull-board/api";
import { BullMQAdapter } from "@bull-board/api/bullMQAdapter";
import { FastifyAdapter } from "@bull-board/fastify";
import { Queue } from "bullmq";
import { messageOf } from "../../shared/errors/index.js";
import type { Logger } from "../../shared/log.js";
import type { RedisNames } from "../../shared/naming.js";
import {
  redisAnswerMs,
  redisAnswerWithin,
  redisCloseGraceMs,
  settlesWithin,
} from "../../shared/process/deadline.js";
import type { RedisClient } from "../../shared/redis/index.js";
import type { ModelDiscovery } from "./model-discovery.js";

export interface DashboardQueuesOptions {
  connection: RedisClient;
  names: RedisNames;
  discovery: ModelDiscovery;
  /** Redis is asked again for models at most this often, in ms. */
  refreshMs: number;
  log: Logger;
}

/** A job's name in bull-board's lists: `generate (cancelled)` for a job stopped while it ran. */
function jobDisplayName(job: { name?: string; returnvalue?: unknown }): string {
  const name = job.name ?? "";
  const result = job.returnvalue as { finishReason?: unknown } | null | undefined;
  return result?.finishReason === "cancelled" ? `${name} (cancelled)` : name;
}

/**
 * The model queues bull-board shows, read-only, one BullMQ `Queue` per model. The models are
 * those {@link ModelDiscovery} finds, looked for again on the dashboard's requests (at most every
 * `refreshMs`), so a model that appears later is shown without a restart; a model once shown
 * stays. The queues never write to Redis (`skipMetasUpdate`): a dashboard watching a model does
 * not create its queue.
 */
export class DashboardQueues {
  readonly serverAdapter = new FastifyAdapter();
  readonly #options: DashboardQueuesOptions;
  readonly #queues = new Map<string, Queue>();
  readonly #board: ReturnType<typeof createBullBoard>;
  #lookedAt = Number.NEGATIVE_INFINITY;
  #looking: Promise<void> | undefined;

  constructor(options: DashboardQueuesOptions) {
    this.#options = options;
    this.serverAdapter.setBasePath("/");
    this.#board = createBullBoard({
      queues: [],
      serverAdapter: this.serverAdapter,
      options: { uiConfig: { boardTitle: "LLM pool queues" } },
    });
  }

  /** The queues shown, by model, in name order. */
  get byModel(): ReadonlyMap<string, Queue> {
    return this.#queues;
  }

  /**
   * Looks for models unless that was done within `refreshMs` (a look under way is shared), and
   * shows the new ones. Never throws: when Redis does not answer in time, the models already shown
   * stay, and the next request looks again.
   */
  refresh(): Promise<void> {
    if (performance.now() - this.#lookedAt < this.#options.refreshMs) return Promise.resolve();
    this.#looking ??= (async () => {
      this.#lookedAt = performance.now();
      try {
        this.show(await redisAnswerWithin(this.#options.discovery.find(), redisAnswerMs));
      } catch (error) {
        this.#options.log.warn("the dashboard could not look for models in Redis", {
          error: messageOf(error),
        });
      } finally {
        this.#looking = undefined;
      }
    })();
    return this.#looking;
  }

  /** Shows these models' queues beside those already shown. */
  show(models: readonly string[]): void {
    const { connection, names, log } = this.#options;
    const added = models.filter((model) => !this.#queues.has(model));
    if (added.length === 0) return;
    for (const model of added) {
      const queue = new Queue(names.modelQueue(model), {
        connection,
        prefix: names.bullPrefix,
        skipMetasUpdate: true,
      });
      queue.on("error", (error: Error) =>
        log.error("dashboard queue error", { queue: queue.name, error: error.message }),
      );
      this.#queues.set(model, queue);
    }
    const sorted = [...this.#queues].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    this.#queues.clear();
    for (const [model, queue] of sorted) this.#queues.set(model, queue);
    // bull-board lists its queues in the order they were added: all again, in name order.
    this.#board.replaceQueues([]);
    this.#board.setQueues(sorted.map(([model, queue]) => adapterOf(model, queue)));
    log.info("the dashboard shows new model queues", { models: added.join(",") });
  }

  async close(): Promise<void> {
    // BullMQ's close waits on Redis with no bound of its own.
    const closed = Promise.allSettled([...this.#queues.values()].map((queue) => queue.close()));
    if (!(await settlesWithin(closed, redisCloseGraceMs))) {
      this.#options.log.warn(
        "the dashboard's queues did not close: Redis did not answer; gave up on them",
      );
    }
  }
}

function adapterOf(model: string, queue: Queue): BullMQAdapter {
  const adapter = new BullMQAdapter(queue, {
    readOnlyMode: true,
    allowRetries: false,
    description: `jobs for model "${model}"`,
    // The queue's name carries braces (its cluster hash tag); people read the model's name.
    displayName: `model-${model}`,
  });
  // bull-board knows BullMQ's states only, where a job stopped while it ran is completed.
  adapter.setFormatter("name", jobDisplayName);
  return adapter;
}
