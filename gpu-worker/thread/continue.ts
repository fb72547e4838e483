import type { ChatHistoryItem, LlamaGrammar, Token } from "node-llama-cpp";
import { WorkerLostError } from "../../shared/errors/index.js";
import type { Continuation, GenerationTask, ThreadResult } from "../../shared/protocol/index.js";
import { runOnLeasedSequence } from "./leased-run.js";
import type { LoadedModel } from "./load-model.js";
import { toLlamaSampling } from "./sampling-options.js";
import { promptReading, runTokenLoop } from "./token-loop.js";

export interface ContinueJob {
  loaded: LoadedModel;
  task: GenerationTask;
  /** The prompt's tokens as the first attempt evaluated them (BOS included); a chat's history. */
  prompt: { tokens: Token[]; history?: ChatHistoryItem[] };
  /** The job's `max_tokens`, capped by the room the prompt leaves (as the first attempt's). */
  maxTokens: number;
  seed: number;
  continuation: Continuation;
  hooks: {
    signal: AbortSignal;
    onText: (text: string, tokens?: readonly number[]) => void;
    onStarted?: ((sequencesInUse: number) => void) | undefined;
    grammar?: LlamaGrammar | undefined;
  };
}

/**
 * Goes on with a job whose gpu-worker was lost, from the tokens whose text its caller already
 * got: the prompt and those tokens are evaluated (see `replay-tokens.ts`; the prompt cache spares
 * the prefix a sequence holds), and generation goes on with what is left of `max_tokens`, with the
 * token loop of `token-loop.ts` (text read, stop strings held back and the grammar applied as the
 * first attempt's were). Under greedy sampling the text is the one an uninterrupted run gives;
 * with temperature > 0 it is a valid sample, not the one that would have been. A job of several
 * choices, logprobs or function calls is not continued (its deltas carry no token ids, so the
 * orchestrator fails it `WORKER_LOST`; one that arrives anyway fails so here).
 */
export async function continueGeneration(job: ContinueJob): Promise<ThreadResult> {
  const { loaded, task, prompt, hooks, continuation } = job;
  if (task.sampling.n !== undefined || task.sampling.logprobs !== undefined) {
    throw new WorkerLostError("a job of several choices or logprobs is not continued");
  }
  const resume = continuation.tokens as Token[];
  const remaining = job.maxTokens - resume.length;
  if (remaining <= 0) {
    // The lost attempt had generated all it was allowed: only its end was not told.
    return {
      finishReason: "length",
      promptTokens: prompt.tokens.length,
      cachedTokens: 0,
      completionTokens: resume.length,
      seed: job.seed,
    };
  }
  return runOnLeasedSequence(
    loaded,
    prompt.tokens,
    hooks,
    { seed: job.seed, tokensBefore: resume.length },
    (sequence) =>
      runTokenLoop({
        ...promptReading(loaded.chatWrapper, prompt.history),
        model: loaded.model,
        sequence,
        promptTokens: prompt.tokens,
        maxTokens: remaining,
        sampling: toLlamaSampling({ ...task.sampling, seed: job.seed }),
        top: undefined,
        grammar: hooks.grammar,
        signal: hooks.signal,
        onText: (text, _logprobs, tokens) => hooks.onText(text, tokens),
        resume,
      }),
  );
}
