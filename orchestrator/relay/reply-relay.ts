import type { Cluster } from "ioredis";
import { messageOf, RedisUnavailableError } from "../../shared/errors/index.js";
import type { Logger } from "../../shared/log.js";
import type { RedisNames } from "../../shared/naming.js";
import { redisCloseGraceMs, settlesWithin } from "../../shared/process/deadline.js";
import { decodeEnvelope, type ReplyEnvelope } from "../../shared/protocol/index.js";
import { isCluster, onTopologyChange, type RedisClient } from "../../shared/redis/index.js";

/** After a cluster's node was lost or added, when to read the streams once more. */
const clusterSettleMs = 3000;

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
 * The transport of this orchestrator's replies, by pub/sub, and the jobs' reply streams, read to
 * repair what pub/sub missed (a gap the job found, a reconnect of the subscriber, a failover). It
 * routes each reply to its job by id and keeps nothing per job beyond its subscription: ordering,
 * attempts and opening are the job's own (see `jobs/tracked-job.ts`).
 *
 * Which channel: on one server and Sentinel, this orchestrator's own, subscribed once at start
 * (so no job can publish before anyone listens). On a Redis Cluster, each job's shard channel
 * (`SSUBSCRIBE`), {@link follow}ed before the job is queued and left when it ends: a plain
 * `PUBLISH` there crosses the cluster bus to every node, a sharded one stays on the job's shard.
 */
export class ReplyRelay {
  /** This orchestrator's channel (one server, Sentinel; unused on a cluster). */
  readonly channel: string;
  readonly #subscriber: RedisClient;
  readonly #redis: RedisClient;
  readonly #names: RedisNames;
  readonly #targets: ReplyTargets;
  readonly #log: Logger;
  /**
   * Its own channel, and those of orchestrators that are gone whose jobs it adopted; on a
   * cluster, the shard channels of the jobs it follows.
   */
  readonly #channels = new Set<string>();
  /** Jobs whose stream is being read, and whether another read was asked for meanwhile. */
  readonly #backfilling = new Map<string, { again: boolean }>();
  #connectedOnce = false;
  /** The second read of every stream after a cluster topology change. */
  #stopWatching: (() => void) | undefined;
  #closing: Promise<void> | undefined;

  constructor(options: {
    subscriber: RedisClient;
    redis: RedisClient;
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
    if (!isCluster(options.subscriber)) this.#channels.add(this.channel);
  }

  async start(): Promise<void> {
    if (isCluster(this.#subscriber)) {
      this.#startSharded(this.#subscriber);
      return;
    }
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

  #startSharded(subscriber: Cluster): void {
    subscriber.on("smessage", (channel: string, text: string) => {
      if (this.#channels.has(channel)) this.#receive(text);
    });
    // A cluster client stays "ready" through a failover: the subscriptions of a lost primary's
    // slots move to the promoted replica on their own (ioredis's sharded subscriber group), and
    // what was published meanwhile is lost. A node lost or added is the sign: read every job's
    // stream now (the read waits out the promotion) and once more after the new primaries
    // settled.
    this.#stopWatching = onTopologyChange(
      subscriber,
      (when) => this.#repair(when),
      clusterSettleMs,
    );
    // The subscriber connections were made anew: subscribe every job's channel (again: Redis
    // ignores a repeat, and one refused meanwhile is made now), then read the streams, so a reply
    // published in between reaches us by one path at least.
    subscriber.on("subscribersReady", () => {
      if (!this.#connectedOnce || this.#channels.size === 0) return;
      const channels = [...this.#channels];
      void Promise.allSettled(channels.map((channel) => subscriber.ssubscribe(channel))).then(() =>
        this.#repair("resubscribed"),
      );
    });
    this.#connectedOnce = true;
  }

  #repair(when: string): void {
    const jobIds = [...this.#targets.keys()];
    if (jobIds.length === 0) return;
    this.#log.info("the Redis Cluster changed: repairing replies from streams", {
      jobs: jobIds.length,
      when,
    });
    for (const jobId of jobIds) void this.backfill(jobId);
  }

  /** Whether each job has a channel of its own, to {@link follow} before it is queued (a cluster). */
  get channelPerJob(): boolean {
    return isCluster(this.#subscriber);
  }

  /**
   * Receives one job's replies from now on; resolves once Redis confirmed, so a job queued after
   * it cannot publish unheard. On a cluster: its shard channel (throws `REDIS_UNAVAILABLE` when
   * the subscription cannot be made, e.g. its primary is being replaced; the channel is then
   * subscribed once the cluster's subscriber connections are made anew, until {@link unfollow}).
   * Elsewhere, `owner`: the
   * orchestrator whose channel its gpu-workers write to, when it is not this one (a job adopted
   * from an orchestrator that is gone); nothing to do for this one's own jobs.
   */
  async follow(jobId: string, owner?: string): Promise<void> {
    if (!isCluster(this.#subscriber)) {
      const channel = owner === undefined ? undefined : this.#names.replyChannel(owner);
      if (channel === undefined || this.#channels.has(channel)) return;
      this.#channels.add(channel);
      await this.#subscriber.subscribe(channel);
      return;
    }
    const channel = this.#names.jobReplyChannel(jobId);
    if (this.#channels.has(channel)) return;
    this.#channels.add(channel);
    try {
      await this.#subscriber.ssubscribe(channel);
    } catch (error) {
      throw new RedisUnavailableError("could not subscribe to the job's replies", {
        cause: error,
      });
    }
  }

  /** Receives nothing more for this job (it ended): leaves its shard channel, on a cluster. */
  unfollow(jobId: string): void {
    if (!isCluster(this.#subscriber)) return;
    const channel = this.#names.jobReplyChannel(jobId);
    if (!this.#channels.delete(channel)) return;
    this.#subscriber.sunsubscribe(channel).catch((error: unknown) =>
      // Its primary is gone: the subscription went with it (ioredis forgot it already).
      this.#log.debug("could not leave a job's reply channel", {
        jobId,
        error: messageOf(error),
      }),
    );
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
        // Where continued attempts start first (their marks' ids end in `-0`): they bound what
        // each earlier attempt's replies are worth (see `JobReplies`).
        const marks = entries.filter(([id]) => id.endsWith("-0"));
        for (const [, fields] of [...marks, ...entries.filter(([id]) => !id.endsWith("-0"))]) {
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
      this.#stopWatching?.();
      if (this.#subscriber.status !== "ready" || this.#channels.size === 0) return;
      const channels = [...this.#channels];
      // A sharded unsubscribe takes channels of one slot: one per job.
      const unsubscribed = isCluster(this.#subscriber)
        ? Promise.all(channels.map((channel) => this.#subscriber.sunsubscribe(channel)))
        : this.#subscriber.unsubscribe(...channels);
      if (!(await settlesWithin(unsubscribed, timeoutMs))) {
        this.#log.warn("Redis did not confirm the end of the reply subscription");
      }
    })();
    return this.#closing;
  }
}
