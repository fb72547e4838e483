import type { Redis } from "ioredis";
import { messageOf } from "../../shared/errors/index.js";
import type { Logger } from "../../shared/log.js";
import type { RedisNames } from "../../shared/naming.js";
import { redisCloseGraceMs, settlesWithin } from "../../shared/process/deadline.js";
import { decodeEnvelope, type ReplyEnvelope } from "../../shared/protocol/index.js";

/** Where the relay hands one job's replies: the job's owner in this process. */
export interface ReplyTarget {
  /**
   * A reply of the job as it arrived: in any order, possibly twice (pub/sub and the stream), and
   * possibly an attempt's that is not the job's current one. The target orders and opens them.
   */
  receive(envelope: ReplyEnvelope): void;
}

/** The jobs whose replies are taken here, by id (the job service's map of tracked jobs). */
export interface ReplyTargets {
  get(jobId: string): ReplyTarget | undefined;
  keys(): Iterable<string>;
}

/**
 * The transport of this orchestrator's replies: its own channel, subscribed once at start (so no
 * job can publish before anyone listens), and the jobs' reply streams, read to repair what
 * pub/sub missed (a gap the job found, a reconnect of the subscriber). It routes each reply to
 * its job by id and keeps nothing per job: ordering, attempts and opening are the job's own (see
 * `jobs/tracked-job.ts`).
 */
export class ReplyRelay {
  readonly channel: string;
  readonly #subscriber: Redis;
  readonly #redis: Redis;
  readonly #names: RedisNames;
  readonly #targets: ReplyTargets;
  readonly #log: Logger;
  /** Its own channel, and those of orchestrators that are gone whose jobs it adopted. */
  readonly #channels = new Set<string>();
  /** Jobs whose stream is being read, and whether another read was asked for meanwhile. */
  readonly #backfilling = new Map<string, { again: boolean }>();
  #connectedOnce = false;
  #closing: Promise<void> | undefined;

  constructor(options: {
    subscriber: Redis;
    redis: Redis;
    names: RedisNames;
    orchestratorId: string;
    targets: ReplyTargets;
    log: Logger;
  }) {
    this.#subscriber = options.subscriber;
    this.#redis = options.redis;
    this.#names = options.names;
    this.#targets = options.targets;
    this.#log = options.log;
    this.channel = options.names.replyChannel(options.orchestratorId);
    this.#channels.add(this.channel);
  }

  async start(): Promise<void> {
    this.#subscriber.on("message", (channel: string, text: string) => {
      if (this.#channels.has(channel)) this.#receive(text);
    });
    this.#subscriber.on("ready", () => {
      if (!this.#connectedOnce) return;
      // ioredis reports "ready" before it resubscribes: subscribe (idempotent, and ordered after
      // its own resubscription) before reading the streams, or a reply published in between
      // would reach us by neither path.
      const jobIds = [...this.#targets.keys()];
      this.#log.info("reply subscriber reconnected: repairing from streams", {
        jobs: jobIds.length,
      });
      this.#subscriber
        .subscribe(...this.#channels)
        .then(() => {
          for (const jobId of jobIds) void this.backfill(jobId);
        })
        .catch((error: Error) =>
          this.#log.warn("could not resubscribe to replies", { error: error.message }),
        );
    });
    await this.#subscriber.subscribe(this.channel);
    this.#connectedOnce = true;
  }

  /** The reply channel of the orchestrator with this id. */
  channelOf(orchestratorId: string): string {
    return this.#names.replyChannel(orchestratorId);
  }

  /**
   * Also receives the replies sent to another orchestrator's channel: that of an orchestrator
   * that is gone, whose jobs this one adopted (their gpu-workers still write there).
   */
  async listen(channel: string): Promise<void> {
    if (this.#channels.has(channel)) return;
    this.#channels.add(channel);
    await this.#subscriber.subscribe(channel);
  }

  /** Jobs whose stream is being read now (0 when idle). */
  get backfilling(): number {
    return this.#backfilling.size;
  }

  /**
   * Reads a job's stream and hands every reply in it to the job (which drops what it has). A
   * request made while a read is under way runs again after it, so a reply stored after that
   * read is not missed.
   */
  async backfill(jobId: string): Promise<void> {
    if (this.#targets.get(jobId) === undefined) return;
    const running = this.#backfilling.get(jobId);
    if (running !== undefined) {
      running.again = true;
      return;
    }
    const state = { again: false };
    this.#backfilling.set(jobId, state);
    try {
      do {
        state.again = false;
        const entries = await this.#redis.xrange(this.#names.deltaStream(jobId), "-", "+");
        for (const [, fields] of entries) {
          const text = fields[1];
          if (text !== undefined) this.#receive(text);
        }
      } while (state.again && this.#targets.get(jobId) !== undefined);
    } catch (error) {
      this.#log.warn("could not read a job's reply stream", { jobId, error: messageOf(error) });
    } finally {
      this.#backfilling.delete(jobId);
    }
  }

  #receive(text: string): void {
    const envelope = decodeEnvelope(text);
    if (envelope === undefined) return;
    this.#targets.get(envelope.j)?.receive(envelope);
  }

  /** Stops listening; gives Redis up to `timeoutMs` to confirm. Never throws. */
  close(timeoutMs = redisCloseGraceMs): Promise<void> {
    this.#closing ??= (async () => {
      // Not connected now: there is no subscription to end, and the connection is closed next.
      if (this.#subscriber.status !== "ready") return;
      const unsubscribed = this.#subscriber.unsubscribe(...this.#channels);
      if (!(await settlesWithin(unsubscribed, timeoutMs))) {
        this.#log.warn("Redis did not confirm the end of the reply subscription");
      }
    })();
    return this.#closing;
  }
}
