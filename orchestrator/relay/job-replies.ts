import type { KeyRing } from "../../shared/crypto/index.js";
import type { Logger } from "../../shared/log.js";
import { openReply, type ReplyEnvelope, type ReplyMessage } from "../../shared/protocol/index.js";
import type { ReplyTarget } from "./reply-relay.js";
import { ReplySequencer } from "./reply-sequencer.js";

type Sequenced = Extract<ReplyEnvelope, { s: number }>;

export interface JobRepliesOptions {
  jobId: string;
  keyRing: KeyRing;
  log: Logger;
  /** Processing began (best effort: the first reply implies it too). */
  onStarted(): void;
  /** The next reply, in order, without gaps or repeats. */
  onReply(message: ReplyMessage): void;
  /** A reply could not be opened (sealed with a key this orchestrator does not have). */
  onUnreadable(): void;
  /** A gap in the numbering: the job's stream should be read (the relay's `backfill`). */
  onGap(): void;
}

/**
 * One job's replies as it takes them: only its current attempt's (a job queued again after its
 * gpu-worker was lost drops what the lost attempt still sends), opened, checked and in order
 * without gaps or repeats, whether they came by pub/sub or from the stream. Owned by the job (see
 * `jobs/tracked-job.ts`): the attempt number lives here and nowhere else in the process.
 */
export class JobReplies implements ReplyTarget {
  readonly #options: JobRepliesOptions;
  #attempt: number;
  #order = new ReplySequencer<Sequenced>();
  /** The first seq of each continued attempt (the attempts' marks in the job's stream). */
  readonly #starts = new Map<number, number>();
  #closed = false;

  constructor(options: JobRepliesOptions, attempt = 1) {
    this.#options = options;
    this.#attempt = attempt;
  }

  /** The attempt whose replies are taken. */
  get attempt(): number {
    return this.#attempt;
  }

  /** Whether any reply has been handed over (by this attempt or, for a continuation, before). */
  get delivered(): boolean {
    return this.#order.next > 0;
  }

  /** The number of the next reply to hand over. */
  get next(): number {
    return this.#order.next;
  }

  /**
   * Takes only `attempt`'s replies from now on, numbered from `from`: 0 when the job runs anew, the
   * next number when it continues from what was delivered. Whatever the earlier attempt still
   * sends is dropped.
   */
  restart(attempt: number, from = 0): void {
    this.#attempt = attempt;
    this.#starts.set(attempt, from);
    this.#order = new ReplySequencer(from);
  }

  /** Takes nothing more (the job ended). */
  close(): void {
    this.#closed = true;
  }

  receive(envelope: ReplyEnvelope): void {
    if (this.#closed) return;
    const attempt = envelope.a ?? 1;
    if ("e" in envelope) {
      if (envelope.e === "from") this.#starts.set(attempt, envelope.f);
      else if (attempt === this.#attempt) this.#options.onStarted();
      return;
    }
    if (attempt !== this.#attempt && !this.#earlierAttemptHas(attempt, envelope.s)) return;
    const { jobId, keyRing, log } = this.#options;
    for (const item of this.#order.offer(envelope.s, envelope)) {
      let message: ReplyMessage;
      try {
        message = openReply(keyRing, item);
      } catch {
        log.error("a reply could not be opened: is every process on the same ENCRYPTION_KEY?", {
          jobId,
        });
        this.#options.onUnreadable();
        return;
      }
      if (message.seq !== item.s) {
        // The number outside the seal disagrees with the one inside: not a reply we can trust.
        log.error("a reply's sequence number does not match its sealed content", { jobId });
        this.#options.onUnreadable();
        return;
      }
      this.#options.onReply(message);
      // The handler may have ended the job (a terminal reply).
      if (this.#closed) return;
    }
    if (this.#order.hasGap) this.#options.onGap();
  }

  /**
   * Whether reply `seq` of an earlier attempt is the job's: below the seq the next attempt
   * continued from (what a job adopted after a continuation rebuilds its text from). Unknown
   * bounds (no mark read yet, or the next attempt ran anew from 0): not.
   */
  #earlierAttemptHas(attempt: number, seq: number): boolean {
    if (attempt > this.#attempt) return false;
    const start = attempt === 1 ? 0 : this.#starts.get(attempt);
    const end = this.#starts.get(attempt + 1);
    return start !== undefined && end !== undefined && seq >= start && seq < end;
  }
}
