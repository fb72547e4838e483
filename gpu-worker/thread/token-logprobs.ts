import type { LlamaModel, Token } from "node-llama-cpp";
import type { TokenLogprob, TopLogprob } from "../../shared/protocol/index.js";

/** What node-llama-cpp's `evaluateWithMetadata` gives for one sampled token. */
export interface SampledToken {
  token: Token;
  /** The chosen token's probability under the job's sampling settings. */
  confidence?: number;
  /** Every candidate's probability, most likely first (asked only when alternatives are). */
  probabilities?: Map<Token, number>;
}

const replacementChar = "\uFFFD";

/**
 * A generated token's {@link TokenLogprob}: node-llama-cpp's probabilities for the job's sampling
 * settings (temperature, top-k/p, min-p, penalties, grammar applied), as natural logs, with the
 * `top` most likely tokens. A token's text is read as it continues `before` (the tokens generated
 * ahead of it), as the reply's text is.
 */
export function tokenLogprob(
  model: LlamaModel,
  sampled: SampledToken,
  top: number,
  before: readonly Token[],
): TokenLogprob {
  const chosen = textOf(model, sampled.token, before);
  const probability = sampled.confidence ?? sampled.probabilities?.get(sampled.token) ?? 0;
  const alternatives: TopLogprob[] = [];
  if (top > 0 && sampled.probabilities !== undefined) {
    for (const [token, p] of sampled.probabilities) {
      if (alternatives.length >= top) break;
      alternatives.push({ ...textOf(model, token, before), logprob: logOf(p) });
    }
  }
  return { ...chosen, logprob: logOf(probability), top_logprobs: alternatives };
}

/** A probability's natural log; 0 (a token the settings ruled out) is -9999, as OpenAI shows it. */
function logOf(probability: number): number {
  return probability > 0 ? Math.log(probability) : -9999;
}

function textOf(
  model: LlamaModel,
  token: Token,
  before: readonly Token[],
): { token: string; bytes: number[] | null } {
  const text = model.detokenize([token], false, before);
  if (!text.includes(replacementChar))
    return { token: text, bytes: [...Buffer.from(text, "utf8")] };
  // Part of a character: a byte-fallback token (`<0xE8>`) names its byte; other bytes are unknown.
  const piece = model.fileInfo.metadata.tokenizer?.ggml?.tokens?.[token];
  const byte = typeof piece === "string" ? /^<0x([0-9A-Fa-f]{2})>$/.exec(piece) : null;
  return { token: text, bytes: byte?.[1] === undefined ? null : [Number.parseInt(byte[1], 16)] };
}
