import { messageOf } from "../../shared/errors/index.js";
import type { Logger } from "../../shared/log.js";
import type { RedisNames } from "../../shared/naming.js";
import { redisCloseGraceMs, settlesWithin } from "../../shared/process/deadline.js";
import { controlMessageSchema } from "../../shared/protocol/index.js";
import { getEach, onTopologyChange, type RedisClient } from "../../shared/redis/index.js";

/** How long after a Redis change the cancel marks are read once more (ms). */
const recheckSettleMs = 3000;

/**
 * The jobs this gpu-worker runs, by id, each with the AbortController that cancels it. Cancels
 * arrive on the control channel (every gpu-worker hears them and acts on its own jobs). A job
 * picked up just after its cancel message went by is caught by the cancel key the orchestrator
 * sets before publishing: `register` checks it after recording the job, so no order of events
 * misses a cancel, nor does a subscription that was down (see `start`). The control channel also carries load requests (a job waits for a model no
 * gpu-worker has loaded): they go to `onLoadRequest`.
 */
export class Cancellations {
  readonly #running = new Map<string, AbortController>();
  readonly #redis: RedisClient;
  readonly #subscriber: RedisClient;
  readonly #names: RedisNames;
  readonly #log: Logger;
  readonly #onLoadRequest: ((model: string) => void) | undefined;
  #closing: Promise<void> | undefined;
  #stopWatching: (() => void) | undefined;

  constructor(options: {
    redis: RedisClient;
    subscriber: RedisClient;
    names: RedisNames;
    log: Logger;
    /** Told of each load request on the control channel. */
    onLoadRequest?: (model: string) => void;
  }) {
    this.#redis = options.redis;
    this.#subscriber = options.subscriber;
    this.#names = options.names;
    this.#log = options.log;
    this.#onLoadRequest = options.onLoadRequest;
  }

  async start(): Promise<void> {
    // A cancel published while the subscription was down or moving to another cluster node is
    // not heard: its mark is, read for every running job once the subscription is back (and on a
    // cluster once more when the new primaries settled).
    this.#stopWatching = onTopologyChange(
      this.#subscriber,
      () => void this.#recheck(),
      recheckSettleMs,
    );
    this.#subscriber.on("message", (channel: string, text: string) => {
      if (channel !== this.#names.controlChannel) return;
      const parsed = safeParse(text);
      if (parsed === undefined) {
        this.#log.warn("ignored a malformed control message");
        return;
      }
      if (parsed.type === "cancel") this.cancel(parsed.jobId);
      else this.#onLoadRequest?.(parsed.model);
    });
    await this.#subscriber.subscribe(this.#names.controlChannel);
  }

  /**
   * Records a starting job whose generation `controller` stops, at once, so generation need not
   * wait for Redis; the cancel key is checked meanwhile, and the controller is aborted (before
   * `checked` resolves) if the job was cancelled while queued.
   */
  register(jobId: string, controller: AbortController): { checked: Promise<void> } {
    this.#running.set(jobId, controller);
    const checked = this.#redis.exists(this.#names.cancelKey(jobId)).then(
      (exists) => {
        if (exists === 1) controller.abort();
      },
      (error: unknown) => {
        this.#log.warn("could not check the cancel key", {
          jobId,
          error: messageOf(error),
        });
      },
    );
    return { checked };
  }

  /** Aborts the running jobs whose cancel mark is set (never throws). */
  async #recheck(): Promise<void> {
    const ids = [...this.#running.keys()];
    if (ids.length === 0) return;
    try {
      const marks = await getEach(
        this.#redis,
        ids.map((id) => this.#names.cancelKey(id)),
      );
      ids.forEach((id, index) => {
        if (marks[index] !== null && marks[index] !== undefined) this.cancel(id);
      });
    } catch (error) {
      this.#log.warn("could not check the cancel marks after a Redis change", {
        error: messageOf(error),
      });
    }
  }

  /** Jobs running here now (back to 0 when idle). */
  get size(): number {
    return this.#running.size;
  }

  unregister(jobId: string): void {
    this.#running.delete(jobId);
  }

  /** Aborts a job if it runs here. */
  cancel(jobId: string): boolean {
    const controller = this.#running.get(jobId);
    if (controller === undefined) return false;
    this.#log.info("cancelling job", { jobId });
    controller.abort();
    return true;
  }

  /** How many jobs run here now. */
  get running(): number {
    return this.#running.size;
  }

  /** Aborts every running job (used when shutdown cannot wait for them). */
  cancelAll(): void {
    for (const jobId of this.#running.keys()) this.cancel(jobId);
  }

  /** Stops listening for cancels; gives Redis up to `timeoutMs` to confirm. Never throws. */
  close(timeoutMs = redisCloseGraceMs): Promise<void> {
    this.#stopWatching?.();
    this.#closing ??= (async () => {
      // Not connected now: there is no subscription to end, and the connection is closed next.
      if (this.#subscriber.status !== "ready") return;
      const unsubscribed = this.#subscriber.unsubscribe(this.#names.controlChannel);
      if (!(await settlesWithin(unsubscribed, timeoutMs))) {
        this.#log.warn("Redis did not confirm the end of the cancel subscription");
      }
    })();
    return this.#closing;
  }
}

function safeParse(text: string) {
  try {
    const result = controlMessageSchema.safeParse(JSON.parse(text));
    return result.success ? result.data : undefined;
  } catch {
    return undefined;
  }
}
