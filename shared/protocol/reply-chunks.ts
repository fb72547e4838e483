import type { ChoiceResult } from "./choice-result.js";
import type { ReplyMessage } from "./reply-message.js";
import type { ChoiceEnd, DeltaChunk } from "./stream-chunk.js";

/**
 * The chunk a caller reads for a `delta` reply: its text, and its choice, logprobs and the
 * function-call pieces after the text, if any.
 */
export function deltaChunkOf(message: Extract<ReplyMessage, { kind: "delta" }>): DeltaChunk {
  const chunk: DeltaChunk = { seq: message.seq, delta: message.text };
  if (message.index !== undefined && message.index !== 0) chunk.index = message.index;
  if (message.logprobs !== undefined) chunk.logprobs = message.logprobs;
  if (message.toolCalls !== undefined && message.toolCalls.length > 0) {
    chunk.tool_calls = message.toolCalls;
  }
  return chunk;
}

/** The final chunk's `choices`, for a `done` reply of a job with `n` > 1. */
export function choiceEndsOf(choices: readonly ChoiceResult[] | undefined): {
  choices?: ChoiceEnd[];
} {
  if (choices === undefined) return {};
  return {
    choices: choices.map((choice) => ({
      index: choice.index,
      finish_reason: choice.finishReason,
      completion_tokens: choice.completionTokens,
    })),
  };
}
