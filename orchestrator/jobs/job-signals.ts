import type { Redis } from "ioredis";
import type { RedisNames } from "../../shared/naming.js";
import type { ControlMessage } from "../../shared/protocol/index.js";
import type { ModelQueues } from "./model-queues.js";

/** How long a cancel mark outlives its job's longest possible wait for a gpu-worker. */
const cancelMarkSeconds = 3600;

/**
 * The Redis side of a job's end, in one place: telling the gpu-workers to stop it, taking it off
 * its queue, and deleting what Redis holds of its run. Keys are written with their expiry in the
 * same command.
 */
export class JobSignals {
  readonly #redis: Redis;
  readonly #names: RedisNames;
  readonly #queues: ModelQueues;

  constructor(options: { redis: Redis; names: RedisNames; queues: ModelQueues }) {
    this.#redis = options.redis;
    this.#names = options.names;
    this.#queues = options.queues;
  }

  /**
   * Stops a job wherever it is: marks it cancelled and tells the gpu-workers (the mark first, so a
   * gpu-worker that takes the job after the message went by still sees it), then takes it off its
   * queue (unless `dequeue` is false: the job is another orchestrator's, which must hear of its
   * end from the gpu-worker). Resolves `true` when it was taken off the queue (nobody will confirm
   * its end). `queueJobId`: the BullMQ id of the job's current attempt (see `worker-watch.ts`).
   */
  async stop(jobId: string, model: string, dequeue = true, queueJobId = jobId): Promise<boolean> {
    const message: ControlMessage = { type: "cancel", jobId };
    await this.#redis
      .multi()
      .set(this.#names.cancelKey(jobId), "1", "EX", cancelMarkSeconds)
      .publish(this.#names.controlChannel, JSON.stringify(message))
      .exec();
    return dequeue ? this.#queues.removeWaiting(model, queueJobId) : false;
  }

  /**
   * Asks the gpu-workers to load a model no gpu-worker has loaded (a job waits for it): one of
   * those that can hold it claims the load (see `gpu-worker/scheduling/`).
   */
  async requestLoad(model: string): Promise<void> {
    const message: ControlMessage = { type: "load", model };
    await this.#redis.publish(this.#names.controlChannel, JSON.stringify(message));
  }

  /**
   * Fences a job's earlier attempts off before it is queued as `attempt`: its owner key names the
   * new attempt with no gpu-worker yet (a lost gpu-worker can no longer claim it or write for it),
   * and the replies the lost attempt stored are deleted.
   */
  async fence(jobId: string, attempt: number, ttlMs: number): Promise<void> {
    await this.#redis
      .multi()
      .set(this.#names.ownerKey(jobId), `${attempt}:`, "PX", ttlMs)
      .del(this.#names.deltaStream(jobId))
      .exec();
  }

  /**
   * Deletes an ended job's reply stream, cancel mark and owner key (without its owner key, a
   * gpu-worker still running the job can write nothing more for it).
   */
  async forget(jobId: string): Promise<void> {
    const names = this.#names;
    await this.#redis.del(names.deltaStream(jobId), names.cancelKey(jobId), names.ownerKey(jobId));
  }
}
