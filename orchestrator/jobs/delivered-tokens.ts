import type { ContinuationData, ReplyMessage } from "../../shared/protocol/index.js";

type Delta = Extract<ReplyMessage, { kind: "delta" }>;

/**
 * The ids of the tokens whose text a job's caller got, in order, gathered from its deltas as they
 * are applied: what another gpu-worker goes on from when the job's is lost (see
 * `TrackedJob.lost`). A job whose text came without them (several choices, logprobs, function
 * calls, or a gpu-worker older than continuations) cannot be continued.
 */
export class DeliveredTokens {
  #tokens: number[] = [];
  #continuable = true;

  /** Takes the tokens of the job's next delta (in order, as applied). */
  add(delta: Delta): void {
    if (!this.#continuable) return;
    const calls = delta.toolCalls !== undefined && delta.toolCalls.length > 0;
    if (delta.tokens === undefined || calls || (delta.index ?? 0) !== 0) {
      this.#continuable = false;
      this.#tokens = [];
      return;
    }
    for (const token of delta.tokens) this.#tokens.push(token);
  }

  /**
   * Where a continuation starts, its first reply numbered `seq`; `undefined` when the job cannot
   * be continued (or nothing was delivered: it then simply runs again).
   */
  continuation(seq: number): ContinuationData | undefined {
    if (!this.#continuable || this.#tokens.length === 0 || seq < 1) return undefined;
    return { tokens: this.#tokens.slice(), seq };
  }
}
