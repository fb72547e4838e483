import type { Redis } from "ioredis";
import type { KeyRing } from "../../shared/crypto/index.js";
import type { Logger } from "../../shared/log.js";
import type { RedisNames } from "../../shared/naming.js";
import { redisCloseGraceMs, settlesWithin } from "../../shared/process/deadline.js";
import {
  decodeEnvelope,
  openReply,
  type ReplyEnvelope,
  type ReplyMessage,
} from "../../shared/protocol/index.js";
import { ReplySequencer } from "./reply-sequencer.js";

type Sequenced = Extract<ReplyEnvelope, { s: number }>;

export interface ReplyHandlers {
  /** Processing began (best effort: the first reply implies it too). */
  onStarted(): void;
  /** The next reply, in order, without gaps or repeats. */
  onReply(message: ReplyMessage): void;
  /** A reply could not be opened (sealed with a key this orchestrator does not have). */
  onUnreadable(): void;
}

interface Tracked {
  handlers: ReplyHandlers;
  /** The attempt whose replies are taken; those of any other are dropped. */
  attempt: number;
  sequencer: ReplySequencer<Sequenced>;
  backfilling: boolean;
  backfillAgain: boolean;
}

/**
 * Receives the replies of this orchestrator's jobs on its own channel, subscribed once at start
 * (so no job can publish before anyone listens), and hands each job its replies in order. A gap
 * in the numbering, or a reconnect of the subscriber, is repaired from the jobs' streams.
 */
export class ReplyRelay {
  readonly channel: string;
  readonly #subscriber: Redis;
  readonly #redis: Redis;
  readonly #names: RedisNames;
  readonly #keyRing: KeyRing;
  readonly #log: Logger;
  readonly #jobs = new Map<string, Tracked>();
  /** Its own channel, and those of orchestrators that are gone whose jobs it adopted. */
  readonly #channels = new Set<string>();
  #connectedOnce = false;
  #closing: Promise<void> | undefined;

  constructor(options: {
    subscriber: Redis;
    redis: Redis;
    names: RedisNames;
    orchestratorId: string;
    keyRing: KeyRing;
    log: Logger;
  }) {
    this.#subscriber = options.subscriber;
    this.#redis = options.redis;
    this.#names = options.names;
    this.#keyRing = options.keyRing;
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
      this.#log.info("reply subscriber reconnected: repairing from streams", {
        jobs: this.#jobs.size,
      });
      this.#subscriber
        .subscribe(...this.#channels)
        .then(() => {
          for (const jobId of this.#jobs.keys()) void this.backfill(jobId);
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

  /** Starts routing a job's replies; call before the job is queued. */
  /** Jobs whose replies it relays now. */
  get size(): number {
    return this.#jobs.size;
  }

  track(jobId: string, handlers: ReplyHandlers): void {
    this.#jobs.set(jobId, {
      handlers,
      attempt: 1,
      sequencer: new ReplySequencer(),
      backfilling: false,
      backfillAgain: false,
    });
  }

  untrack(jobId: string): void {
    this.#jobs.delete(jobId);
  }

  /** Whether any reply of the job's current attempt has been handed over. */
  delivered(jobId: string): boolean {
    return (this.#jobs.get(jobId)?.sequencer.next ?? 0) > 0;
  }

  /**
   * Takes only `attempt`'s replies from now on, numbered from 0 again: the job runs anew after its
   * gpu-worker was lost, and whatever the lost attempt still sends is dropped.
   */
  restart(jobId: string, attempt: number): void {
    const tracked = this.#jobs.get(jobId);
    if (tracked === undefined) return;
    tracked.attempt = attempt;
    tracked.sequencer = new ReplySequencer();
  }

  /**
   * Reads a job's stream and delivers whatever pub/sub has not. A request made while a read is
   * under way runs again after it, so a reply stored after that read is not missed.
   */
  async backfill(jobId: string): Promise<void> {
    const tracked = this.#jobs.get(jobId);
    if (tracked === undefined) return;
    if (tracked.backfilling) {
      tracked.backfillAgain = true;
      return;
    }
    tracked.backfilling = true;
    tracked.backfillAgain = false;
    try {
      const entries = await this.#redis.xrange(this.#names.deltaStream(jobId), "-", "+");
      for (const [, fields] of entries) {
        const text = fields[1];
        if (text !== undefined) this.#receive(text);
      }
    } catch (error) {
      this.#log.warn("could not read a job's reply stream", {
        jobId,
        error: error instanceof Error ? error.message : "unknown",
      });
    } finally {
      tracked.backfilling = false;
    }
    if (tracked.backfillAgain && this.#jobs.get(jobId) === tracked) await this.backfill(jobId);
  }

  #receive(text: string): void {
    const envelope = decodeEnvelope(text);
    if (envelope === undefined) return;
    const tracked = this.#jobs.get(envelope.j);
    if (tracked === undefined || (envelope.a ?? 1) !== tracked.attempt) return;
    if (!("s" in envelope)) {
      tracked.handlers.onStarted();
      return;
    }
    const ready = tracked.sequencer.offer(envelope.s, envelope);
    for (const item of ready) {
      let message: ReplyMessage;
      try {
        message = openReply(this.#keyRing, item);
      } catch {
        this.#log.error(
          "a reply could not be opened: is every process on the same ENCRYPTION_KEY?",
          { jobId: envelope.j },
        );
        tracked.handlers.onUnreadable();
        return;
      }
      if (message.seq !== item.s) {
        // The number outside the seal disagrees with the one inside: not a reply we can trust.
        this.#log.error("a reply's sequence number does not match its sealed content", {
          jobId: envelope.j,
        });
        tracked.handlers.onUnreadable();
        return;
      }
      tracked.handlers.onReply(message);
      // The handler may have untracked the job (terminal reply).
      if (!this.#jobs.has(envelope.j)) return;
    }
    if (tracked.sequencer.hasGap) void this.backfill(envelope.j);
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
