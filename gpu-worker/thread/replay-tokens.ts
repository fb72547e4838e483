import type { LlamaContextSequence, LlamaGrammarEvaluationState, Token } from "node-llama-cpp";
import { WorkerLostError } from "../../shared/errors/index.js";

/**
 * Evaluates a continuation's prompt and the tokens an earlier attempt generated, so that the
 * sequence holds what it held when that attempt sampled its next token; returns the input that
 * samples it (the last replayed token). The prompt goes in as the normal path evaluates it (one
 * batch); each replayed token in a decode step of its own, as it was generated: replaying them in
 * one batch drifted from the uninterrupted greedy text after ~1,100 tokens (llama.cpp's results
 * depend on the batch's shape), one step each matched it exactly. A grammar's evaluation state
 * takes every replayed token, as it took each one sampled.
 */
export async function replay(
  sequence: LlamaContextSequence,
  prompt: readonly Token[],
  tokens: readonly Token[],
  grammarState: LlamaGrammarEvaluationState | undefined,
): Promise<Token[]> {
  if (prompt.length > 0) await sequence.evaluateWithoutGeneratingNewTokens(prompt.slice());
  const last = tokens.length - 1;
  for (let index = 0; index < last; index += 1) {
    await sequence.evaluateWithoutGeneratingNewTokens([tokens[index] as Token]);
  }
  if (grammarState !== undefined) {
    for (const token of tokens) acceptGrammarToken(grammarState, token);
  }
  return [tokens[last] as Token];
}

/** node-llama-cpp's internals a grammar's evaluation state is advanced with (not public API). */
interface GrammarInternals {
  _state?: unknown;
  _llama?: {
    _bindings?: {
      AddonSampler?: { acceptGrammarEvaluationStateToken?: (state: unknown, token: Token) => void };
    };
  };
}

/**
 * Advances a grammar's evaluation state by one token, as node-llama-cpp's sampler does after
 * sampling it (`LlamaSampler._acceptTokenOnGrammarEvaluationState`, internal). Should a version
 * of the library lack it, the continuation fails `WORKER_LOST`, as a lost job did before.
 */
function acceptGrammarToken(state: LlamaGrammarEvaluationState, token: Token): void {
  const internals = state as unknown as GrammarInternals;
  const sampler = internals._llama?._bindings?.AddonSampler;
  if (sampler?.acceptGrammarEvaluationStateToken === undefined || internals._state === undefined) {
    throw new WorkerLostError(
      "this gpu-worker cannot restore a grammar's state to continue the job",
    );
  }
  sampler.acceptGrammarEvaluationStateToken(internals._state, token);
}
