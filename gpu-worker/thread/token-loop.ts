import {
  type ChatWrapperGeneratedContextState,
  type LlamaContextSequence,
  type LlamaGrammar,
  LlamaGrammarEvaluationState,
  type LlamaModel,
  type LlamaText,
  type Token,
} from "node-llama-cpp";
import type { FinishReason, TokenLogprob } from "../../shared/protocol/index.js";
import { HeldText } from "./held-text.js";
import type { toLlamaSampling } from "./sampling-options.js";
import { tokenLogprob } from "./token-logprobs.js";

export interface TokenLoopOptions {
  model: LlamaModel;
  sequence: LlamaContextSequence;
  /** The prompt's tokens, BOS included (a chat's rendered with its template). */
  promptTokens: readonly Token[];
  /** At most this many tokens are generated (the room left in the sequence, at most). */
  maxTokens: number;
  sampling: ReturnType<typeof toLlamaSampling>;
  /** Top alternatives per token (0: the chosen token's logprob only); `undefined`: no logprobs. */
  top: number | undefined;
  grammar?: LlamaGrammar | undefined;
  /** A chat's: the template's end-of-turn triggers (the request's `stop` is in `sampling`). */
  stopTriggers?: ChatWrapperGeneratedContextState["stopGenerationTriggers"];
  signal: AbortSignal;
  /** Each piece of text safe to show, with the logprobs of the tokens it holds (when asked). */
  onText: (text: string, logprobs: TokenLogprob[] | undefined) => void;
  /** Awaited before each token is sampled: the choices of one job go in step (`lockstep.ts`). */
  step?: () => Promise<void>;
}

/** node-llama-cpp's defaults for LlamaCompletion and LlamaChat: the last 64 tokens, not newlines. */
const repeatPenaltyTokens = 64;
/** UTF-8 takes at most 4 bytes a character: a longer run of partial tokens is let out as is. */
const maxPartialTokens = 4;
const replacementChar = "\uFFFD";

/**
 * Generates on `sequence` token by token with node-llama-cpp's `evaluateWithMetadata`, for a job
 * that asked for logprobs (LlamaCompletion and LlamaChat do not hand out token probabilities) or
 * for several choices (which go in step, `step`, so that a seed repeats them: see `lockstep.ts`). It
 * drives the sequence as LlamaCompletion does: the prefix the sequence holds is reused, the same
 * sampling options (penalties over the last 64 generated tokens, newlines spared; the grammar's
 * evaluation state; the seed), end-of-generation tokens end it, `maxTokens` bounds it. Text is
 * read as LlamaCompletion reads it (each token continuing the ones before); a token that ends in
 * part of a character waits for the rest. Stop strings (the request's, the grammar's, a chat
 * template's end of turn) are held back as {@link HeldText} does.
 */
export async function runTokenLoop(options: TokenLoopOptions): Promise<FinishReason> {
  const { model, sequence, sampling, top, grammar, signal, maxTokens } = options;
  if (signal.aborted) return "cancelled";
  const stops = stopsOf(options, model);
  const held = new HeldText(stops.texts, grammar?.trimWhitespaceSuffix === true, (text, logprobs) =>
    options.onText(text, top === undefined ? undefined : logprobs),
  );
  const input = await reusePrefix(sequence, options.promptTokens);
  const generated: Token[] = [];
  const newline = model.tokens.nl;
  const { repeatPenalty } = sampling;
  const iterator = sequence.evaluateWithMetadata(
    input,
    top === undefined
      ? {}
      : top > 0
        ? { confidence: true, probabilities: true }
        : { confidence: true },
    {
      temperature: sampling.temperature,
      topK: sampling.topK,
      topP: sampling.topP,
      minP: sampling.minP,
      ...(sampling.seed === undefined ? {} : { seed: sampling.seed }),
      ...(grammar === undefined
        ? {}
        : { grammarEvaluationState: new LlamaGrammarEvaluationState({ model, grammar }) }),
      ...(repeatPenalty === false
        ? {}
        : {
            repeatPenalty: {
              punishTokens: () =>
                generated.slice(-repeatPenaltyTokens).filter((token) => token !== newline),
              maxPunishTokens: repeatPenaltyTokens,
              penalty: repeatPenalty.penalty,
              frequencyPenalty: repeatPenalty.frequencyPenalty,
              presencePenalty: repeatPenalty.presencePenalty,
            },
          }),
      yieldEogToken: true,
    },
  );
  let count = 0;
  const partial: Token[] = [];
  const partialLogprobs: TokenLogprob[] = [];
  const { contextSize } = sequence.context;
  await options.step?.();
  for await (const sampled of iterator) {
    count += 1;
    const { token } = sampled;
    if (model.isEogToken(token) || stops.tokens.has(token)) {
      held.end();
      return "stop";
    }
    if (top !== undefined) {
      partialLogprobs.push(
        tokenLogprob(model, sampled, top, [...generated.slice(-16), ...partial]),
      );
    }
    partial.push(token);
    const text = model.detokenize(partial, false, generated);
    const atLimit = count >= maxTokens || sequence.nextTokenIndex >= contextSize - 1;
    if (
      text.endsWith(replacementChar) &&
      !model.isSpecialToken(token) &&
      partial.length < maxPartialTokens &&
      !atLimit &&
      !signal.aborted
    ) {
      await options.step?.();
      continue;
    }
    generated.push(...partial);
    const logprobs = partialLogprobs.splice(0);
    partial.length = 0;
    // The end came before the rest of a character: it is not shown (as LlamaCompletion does not).
    const cut =
      (atLimit || signal.aborted) && text.endsWith(replacementChar) && !model.isSpecialToken(token);
    if (!cut && held.add(text, logprobs)) return "stop";
    if (signal.aborted) {
      held.end();
      return "cancelled";
    }
    if (atLimit) {
      held.end();
      return "length";
    }
    await options.step?.();
  }
  held.end();
  return signal.aborted ? "cancelled" : "stop";
}

/**
 * Erases what the sequence holds past the prompt's shared prefix (as LlamaCompletion does) and
 * returns the tokens left to evaluate: at least the prompt's last, to sample the first token.
 */
async function reusePrefix(
  sequence: LlamaContextSequence,
  promptTokens: readonly Token[],
): Promise<Token[]> {
  const input = promptTokens.slice();
  if (input.length === 1 && sequence.nextTokenIndex !== 0) {
    await sequence.eraseContextTokenRanges([{ start: 0, end: sequence.nextTokenIndex }]);
    return input;
  }
  const last = input.pop() as Token;
  await sequence.adaptStateToTokens(input, false);
  input.push(last);
  return input.slice(sequence.nextTokenIndex);
}

/**
 * The texts and tokens that end the generation: the request's stop strings, the grammar's
 * triggers, and a chat template's (a trigger that is one special token, such as `<|im_end|>`,
 * ends it as a token; a plain text one as text; one that mixes both by its tokens, when it is one).
 */
function stopsOf(
  options: TokenLoopOptions,
  model: LlamaModel,
): { texts: string[]; tokens: Set<Token> } {
  const texts = [...options.sampling.customStopTriggers];
  const tokens = new Set<Token>();
  const triggers = [
    ...(options.grammar?.stopGenerationTriggers ?? []),
    ...(options.stopTriggers ?? []),
  ];
  for (const trigger of triggers) {
    if (typeof trigger === "string") {
      texts.push(trigger);
      continue;
    }
    if (Array.isArray(trigger)) {
      if (trigger.every((part) => typeof part === "string")) texts.push(trigger.join(""));
      else if (trigger.length === 1) tokens.add(trigger[0] as Token);
      continue;
    }
    const text = trigger as LlamaText;
    if (text.values.every((value) => typeof value === "string")) {
      texts.push(text.values.join(""));
      continue;
    }
    const triggerTokens = text.tokenize(model.tokenizer);
    if (triggerTokens.length === 1) tokens.add(triggerTokens[0] as Token);
  }
  return { texts, tokens };
}
