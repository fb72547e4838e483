import type { Token } from "node-llama-cpp";
import type { FinishReason, ThreadResult } from "../../shared/protocol/index.js";
import type { LoadedModel } from "./load-model.js";
import type { SequenceLease } from "./sequence-slots.js";

/** A job that ended before it started: its signal fired as node-llama-cpp was about to begin. */
export const cancelledBeforeStart: ThreadResult = Object.freeze({
  finishReason: "cancelled",
  promptTokens: 0,
  cachedTokens: 0,
  completionTokens: 0,
});

/**
 * Runs one generation (`run`) on a sequence leased for `promptTokens` (the one whose cached
 * tokens share the longest prefix) and gives it back: kept in the prompt cache, or emptied after
 * a failure (nothing is known of its state then). The result counts the tokens sampled on the
 * sequence (node-llama-cpp's meter counts each decode with logits): the job's completion tokens,
 * exactly `maxTokens` when it stops for length. Counting the tokens the library hands to
 * `onToken` missed or added one now and then: it holds back tokens that end in part of a
 * character, and releases them with the next ones, or never at the end. `tokensBefore`: completion
 * tokens an earlier attempt generated (a continuation's), counted in.
 */
export async function runOnLeasedSequence(
  loaded: LoadedModel,
  promptTokens: Token[],
  hooks: { signal: AbortSignal; onStarted?: ((sequencesInUse: number) => void) | undefined },
  job: { seed: number; tokensBefore?: number },
  run: (sequence: SequenceLease["sequence"]) => Promise<FinishReason>,
): Promise<ThreadResult> {
  const lease = loaded.slots.acquire(promptTokens);
  hooks.onStarted?.(loaded.slots.inUse);
  const meter = lease.sequence.tokenMeter;
  const sampledBefore = meter.usedOutputTokens;
  let failed = false;
  try {
    const finishReason = await run(lease.sequence);
    return {
      finishReason,
      promptTokens: promptTokens.length,
      cachedTokens: lease.cachedTokens,
      completionTokens: (job.tokensBefore ?? 0) + meter.usedOutputTokens - sampledBefore,
      seed: job.seed,
    };
  } catch (error) {
    failed = true;
    // node-llama-cpp throws (instead of stopping) when the signal fired just before it started.
    if (hooks.signal.aborted) return cancelledBeforeStart;
    throw error;
  } finally {
    // The sequence must be back in the cache before the job (and its slot in the pool) ends.
    await lease.release({ keep: !failed });
  }
}
