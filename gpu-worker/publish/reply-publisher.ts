import type { ChainableCommander } from "ioredis";
import type { KeyRing } from "../../shared/crypto/index.js";
import type { ErrorInfo } from "../../shared/errors/index.js";
import type { Logger } from "../../shared/log.js";
import { RedisNames } from "../../shared/naming.js";
import {
  type DeltaExtras,
  encodeReply,
  encodeStarted,
  type ReplyMessage,
  type TerminalReplyMessage,
} from "../../shared/protocol/index.js";
import type { RedisClient } from "../../shared/redis/index.js";
import {
  claimJobScript,
  fencedReplyScript,
  ownerValue,
  type PublishCommand,
} from "../../shared/registry/job-owner.js";
import { TurnPipeline } from "./turn-pipeline.js";

export interface ReplyPublisherOptions {
  redis: RedisClient;
  names: RedisNames;
  keyRing: KeyRing;
  /** Expiry of a job's delta stream: only a safety net, the orchestrator deletes it at the end. */
  streamTtlSeconds: number;
  /** This gpu-worker's registry id: a job's owner key names it (see `registry/job-owner.ts`). */
  workerId: string;
  /**
   * Whether Redis is a cluster: replies then go by `SPUBLISH` on each job's shard channel
   * (`RedisNames.jobReplyChannel`), which the orchestrator subscribes before it queues the job;
   * else by `PUBLISH` on the orchestrator's channel (the job's `replyTo`). Fixed for the
   * connection's life, from the Redis target's kind.
   */
  sharded: boolean;
  log: Logger;
}

/** The fenced write, as ioredis runs it (EVALSHA, loaded on first use), by how it publishes. */
type FencedReply = (...args: (string | number)[]) => ChainableCommander;
const fencedReplyCommands: Record<PublishCommand, string> = {
  PUBLISH: "llmpoolFencedReply",
  SPUBLISH: "llmpoolFencedReplySharded",
};
/** The claim, by how it publishes its `started` notice. */
const claimScripts: Record<PublishCommand, string> = {
  PUBLISH: claimJobScript("PUBLISH"),
  SPUBLISH: claimJobScript("SPUBLISH"),
};

/**
 * Sends each job's replies to the orchestrator that asked for it, on two paths in one pipeline:
 * appended to the job's Redis stream (durable, so gaps can be repaired) and published (fast): on
 * the orchestrator's channel, or on a cluster on the job's shard channel. Measured: pub/sub alone
 * loses messages when the subscriber reconnects; this dual path lost none of 15,000.
 *
 * Every write is fenced by the job's owner key: a gpu-worker that lost a job (paused past its
 * registry entry, its lock lapsed) writes nothing more for it, even after it resumes.
 *
 * Text arrives already coalesced by the model threads (`DELTA_WINDOW_MS`, see
 * `thread/text-windows.ts`), so each piece becomes one delta at once; what all jobs send in one
 * turn of the event loop goes to Redis as one pipeline.
 */
export class ReplyPublisher {
  readonly #options: ReplyPublisherOptions;
  readonly #writes: TurnPipeline;

  constructor(options: ReplyPublisherOptions) {
    this.#options = options;
    this.#writes = new TurnPipeline(options.redis);
    const publish = publishCommandOf(options.sharded);
    const command = fencedReplyCommands[publish];
    if (!(command in options.redis)) {
      options.redis.defineCommand(command, { numberOfKeys: 2, lua: fencedReplyScript(publish) });
    }
  }

  /**
   * Replies of one attempt of one job, numbered from `firstSeq` (a continuation's: after what the
   * lost attempt delivered); {@link JobReplies.claim} it before writing.
   */
  forJob(jobId: string, replyTo: string, attempt: number, firstSeq = 0): JobReplies {
    const replies = new JobReplies(
      { ...this.#options, writes: this.#writes },
      jobId,
      replyTo,
      attempt,
    );
    replies.startAt(firstSeq);
    return replies;
  }
}

function publishCommandOf(sharded: boolean): PublishCommand {
  return sharded ? "SPUBLISH" : "PUBLISH";
}

export type TerminalFields =
  | Omit<Extract<TerminalReplyMessage, { kind: "done" }>, "seq">
  | Omit<Extract<TerminalReplyMessage, { kind: "error" }>, "seq">;

interface JobRepliesOptions extends ReplyPublisherOptions {
  writes: TurnPipeline;
}

/** Numbered replies of one job: each piece of text is one delta, sent at once. */
export class JobReplies {
  readonly #options: JobRepliesOptions;
  readonly #jobId: string;
  /** Where its replies are published, and how. */
  readonly #channel: string;
  readonly #publish: PublishCommand;
  readonly #attempt: number;
  readonly #stream: string;
  readonly #ownerKey: string;
  readonly #owner: string;
  #seq = 0;
  #lastWrite: Promise<void> = Promise.resolve();
  #ended = false;
  #lost = false;
  readonly #onLost = new Set<() => void>();

  constructor(options: JobRepliesOptions, jobId: string, replyTo: string, attempt: number) {
    this.#options = options;
    this.#jobId = jobId;
    this.#publish = publishCommandOf(options.sharded);
    this.#channel = options.sharded ? options.names.jobReplyChannel(jobId) : replyTo;
    this.#attempt = attempt;
    this.#stream = options.names.deltaStream(jobId);
    this.#ownerKey = options.names.ownerKey(jobId);
    this.#owner = ownerValue({ attempt, workerId: options.workerId });
  }

  /** Numbers the next reply `seq` (before any is sent). */
  startAt(seq: number): void {
    this.#seq = seq;
  }

  /**
   * Records this gpu-worker as the job's owner (with its expiry, in one step) and sends the
   * best-effort `started` notice. `false`, and nothing written, when the job is no longer this
   * attempt's: the orchestrator queued it again, or another gpu-worker holds it.
   */
  async claim(): Promise<boolean> {
    const { redis, streamTtlSeconds, workerId } = this.#options;
    const claimed = await redis.eval(
      claimScripts[this.#publish],
      1,
      this.#ownerKey,
      this.#attempt,
      workerId,
      streamTtlSeconds * 1000,
      this.#channel,
      encodeStarted(this.#jobId, this.#attempt),
    );
    if (claimed !== 1) this.#markLost();
    return claimed === 1;
  }

  /** Whether the job was taken from this gpu-worker: nothing more is written for it. */
  get lost(): boolean {
    return this.#lost;
  }

  /** Calls `listener` once when the job is found lost (a write refused, or {@link abandon}). */
  onLost(listener: () => void): void {
    if (this.#lost) listener();
    else this.#onLost.add(listener);
  }

  /** Writes nothing more for this job (its BullMQ lock is gone). */
  abandon(): void {
    this.#markLost();
  }

  /**
   * Sends a piece of generated text as the next delta, with its choice, its logprobs and the
   * function-call pieces after it, if any.
   */
  text(text: string, extras?: DeltaExtras): void {
    if (this.#ended || this.#lost) return;
    if (extras === undefined) {
      if (text.length > 0) this.#send({ kind: "delta", seq: this.#seq, text });
      return;
    }
    const calls = extras.toolCalls !== undefined && extras.toolCalls.length > 0;
    if (text.length === 0 && extras.logprobs === undefined && !calls) return;
    this.#send({ kind: "delta", seq: this.#seq, text, ...extras });
  }

  /** Sends the terminal message, and waits until Redis has every reply of the job. */
  async end(fields: TerminalFields): Promise<void> {
    if (this.#ended || this.#lost) return this.#lastWrite;
    this.#ended = true;
    this.#send({ ...fields, seq: this.#seq } as ReplyMessage);
    return this.#lastWrite;
  }

  /** Shortcut for an `error` terminal message. */
  fail(error: ErrorInfo): Promise<void> {
    return this.end({ kind: "error", code: error.code, message: error.message });
  }

  #markLost(): void {
    if (this.#lost) return;
    this.#lost = true;
    for (const listener of this.#onLost) listener();
    this.#onLost.clear();
  }

  #send(message: ReplyMessage): void {
    const { writes, keyRing, streamTtlSeconds, log } = this.#options;
    const wire = encodeReply(keyRing, this.#jobId, message, this.#attempt);
    const entryId = RedisNames.streamEntryId(this.#attempt, message.seq);
    this.#seq = message.seq + 1;
    // One connection keeps pipelines in order; awaiting the last write awaits them all.
    this.#lastWrite = writes
      .results((pipeline) => {
        const fencedReply = (pipeline as unknown as Record<string, FencedReply>)[
          fencedReplyCommands[this.#publish]
        ];
        (fencedReply as FencedReply).call(
          pipeline,
          this.#ownerKey,
          this.#stream,
          this.#owner,
          entryId,
          wire,
          streamTtlSeconds * 1000,
          this.#channel,
        );
      }, this.#jobId)
      .then(([[error, written] = [null, undefined]]) => {
        if (error !== null) throw error;
        if (written === 0) {
          if (!this.#lost) log.warn("job lost: its reply was refused", { jobId: this.#jobId });
          this.#markLost();
        }
      })
      .catch((error: Error) => {
        log.warn("reply write failed", {
          jobId: this.#jobId,
          seq: message.seq,
          error: error.message,
        });
      });
  }
}
