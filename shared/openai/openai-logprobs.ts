import type { TokenLogprob } from "../protocol/index.js";

/** Chat's `logprobs` of a choice or chunk: `{content: [...]}`, one entry per token. */
export function chatLogprobs(entries: readonly TokenLogprob[]) {
  return { content: entries, refusal: null };
}

/**
 * The legacy completions API's `logprobs`: parallel lists of the tokens, their logprobs, their top
 * alternatives (a token → logprob map each; the chosen token's alone when none were asked), and
 * where each token starts in the choice's text, counted from `offset`.
 */
export function completionLogprobs(entries: readonly TokenLogprob[], offset: number) {
  const textOffset: number[] = [];
  let at = offset;
  for (const entry of entries) {
    textOffset.push(at);
    at += entry.token.length;
  }
  return {
    tokens: entries.map((entry) => entry.token),
    token_logprobs: entries.map((entry) => entry.logprob),
    top_logprobs: entries.map((entry) =>
      Object.fromEntries(
        entry.top_logprobs.length === 0
          ? [[entry.token, entry.logprob]]
          : entry.top_logprobs.map((top) => [top.token, top.logprob]),
      ),
    ),
    text_offset: textOffset,
  };
}
