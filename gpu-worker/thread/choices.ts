import type { ChatHistoryItem, LlamaGrammar, Token } from "node-llama-cpp";
import type {
  ChoiceResult,
  GenerationTask,
  ThreadResult,
  TokenLogprob,
} from "../../shared/protocol/index.js";
import { maxSeed } from "../../shared/protocol/index.js";
import type { LoadedModel } from "./load-model.js";
import { Lockstep } from "./lockstep.js";
import { toLlamaSampling } from "./sampling-options.js";
import type { SequenceLease } from "./sequence-slots.js";
import { promptReading, runTokenLoop } from "./token-loop.js";

/** What `generate.ts`'s hooks give a job of choices. */
export interface ChoiceHooks {
  signal: AbortSignal;
  onText: (text: string) => void;
  onChoiceText?:
    | ((index: number, text: string, logprobs: TokenLogprob[] | undefined) => void)
    | undefined;
  onStarted?: ((sequencesInUse: number) => void) | undefined;
  grammar?: LlamaGrammar | undefined;
}

export interface ChoicesJob {
  loaded: LoadedModel;
  task: GenerationTask;
  /** The prompt's tokens as evaluated (BOS included); a chat's history too. */
  prompt: { tokens: Token[]; history?: ChatHistoryItem[] };
  maxTokens: number;
  /** The job's seed: choice `i` samples with `seed + i` (so choices differ, and repeat). */
  seed: number;
  hooks: ChoiceHooks;
}

/**
 * Runs a job that asked for `n` > 1 choices or for logprobs, with the token loop of
 * `token-loop.ts`: each choice on a sequence of its own of this thread's context, all at once
 * (node-llama-cpp batches their tokens together), each with its own seed. Several choices go in
 * step (`lockstep.ts`) from empty sequences, so that a seed repeats them: the prompt cache is not
 * used for them (each evaluates the prompt, in one batch). The result counts the prompt once,
 * the completion tokens of every choice, and each choice's end.
 */
export async function generateChoices(job: ChoicesJob): Promise<ThreadResult> {
  const { loaded, task, prompt, hooks } = job;
  const n = task.sampling.n ?? 1;
  const leases: SequenceLease[] = [];
  for (let index = 0; index < n; index += 1) leases.push(loaded.slots.acquire(prompt.tokens));
  hooks.onStarted?.(loaded.slots.inUse);
  const reading = promptReading(loaded.chatWrapper, prompt.history);
  const lockstep = n > 1 ? new Lockstep(n) : undefined;
  // Stops every choice: the job's signal, or one choice failing (its siblings need not go on).
  const stop = new AbortController();
  const onAbort = () => stop.abort();
  hooks.signal.addEventListener("abort", onAbort, { once: true });
  let failed = false;
  try {
    if (lockstep !== undefined) {
      await Promise.all(leases.map((lease) => lease.sequence.clearHistory()));
    }
    // Settled, all of them, before any sequence goes back: a failed choice's siblings still run.
    const settled = await Promise.allSettled(
      leases.map(async (lease, index): Promise<ChoiceResult> => {
        const meter = lease.sequence.tokenMeter;
        const sampledBefore = meter.usedOutputTokens;
        const seed = (job.seed + index) % (maxSeed + 1);
        const onText = (text: string, logprobs: TokenLogprob[] | undefined) =>
          hooks.onChoiceText === undefined
            ? hooks.onText(text)
            : hooks.onChoiceText(index, text, logprobs);
        try {
          const finishReason = await runTokenLoop({
            model: loaded.model,
            sequence: lease.sequence,
            promptTokens: prompt.tokens,
            maxTokens: job.maxTokens,
            sampling: toLlamaSampling({ ...task.sampling, seed }),
            top: task.sampling.logprobs,
            grammar: hooks.grammar,
            ...reading,
            signal: stop.signal,
            onText,
            ...(lockstep === undefined ? {} : { step: () => lockstep.arrive(index) }),
          });
          return { index, finishReason, completionTokens: meter.usedOutputTokens - sampledBefore };
        } catch (error) {
          stop.abort();
          throw error;
        } finally {
          lockstep?.leave();
        }
      }),
    );
    const rejected = settled.find((result) => result.status === "rejected");
    if (rejected !== undefined) throw rejected.reason;
    const choices = settled.map((result) => (result as PromiseFulfilledResult<ChoiceResult>).value);
    const first = choices[0] as ChoiceResult;
    return {
      finishReason: first.finishReason,
      promptTokens: prompt.tokens.length,
      cachedTokens: lockstep === undefined ? (leases[0]?.cachedTokens ?? 0) : 0,
      completionTokens: choices.reduce((sum, choice) => sum + choice.completionTokens, 0),
      seed: job.seed,
      ...(n > 1 ? { choices } : {}),
    };
  } catch (error) {
    failed = true;
    throw error;
  } finally {
    hooks.signal.removeEventListener("abort", onAbort);
    await Promise.all(leases.map((lease) => lease.release({ keep: !failed })));
  }
}
