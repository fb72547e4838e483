import {
  type ChatHistoryItem,
  LlamaChat,
  LlamaCompletion,
  type LlamaContextSequence,
  type LlamaGrammar,
  type Token,
} from "node-llama-cpp";
import { PromptTooLongError } from "../../shared/errors/index.js";
import type {
  ChatMessage,
  FinishReason,
  GenerationTask,
  ThreadResult,
  TokenLogprob,
} from "../../shared/protocol/index.js";
import {
  checkPromptBytes,
  drawSeed,
  promptBytes,
  promptBytesLimit,
} from "../../shared/protocol/index.js";
import { generateChoices } from "./choices.js";
import { grammarFor } from "./grammar.js";
import type { LoadedModel } from "./load-model.js";
import { toLlamaSampling } from "./sampling-options.js";

export interface GenerateHooks {
  /** Aborting ends generation early with finish reason `cancelled`. */
  signal: AbortSignal;
  /** Called with each piece of text as soon as it is safe to show (stop strings held back). */
  onText: (text: string) => void;
  /** Called once the job holds a sequence, with how many of the context's sequences are taken. */
  onStarted?: (sequencesInUse: number) => void;
  /**
   * A job with `n` > 1 or logprobs: each choice's text, with its tokens' logprobs when asked
   * (`onText` gets choice 0's text without them when this is not given).
   */
  onChoiceText?: (index: number, text: string, logprobs: TokenLogprob[] | undefined) => void;
  /** Structured output: the grammar the text is held to (compiled from the task's). */
  grammar?: LlamaGrammar | undefined;
}

/**
 * Runs one job on a sequence of the thread's prompt cache: the free sequence that already holds
 * the longest prefix of the prompt, of which only the rest is evaluated. The sequence goes back to
 * the cache when the job ends (however it ends), so the next job can use it. The prompt must fit
 * the sequence without truncation: a prompt that leaves no room for one token fails with
 * `PROMPT_TOO_LONG`, and `max_tokens` is capped by the room left.
 */
export async function generate(
  loaded: LoadedModel,
  task: GenerationTask,
  hooks: GenerateHooks,
): Promise<ThreadResult> {
  if (hooks.signal.aborted) return cancelledBeforeStart;
  const { contextSize } = loaded.context;
  // Before tokenizing: a prompt of more bytes than any context-full of tokens is refused at once.
  checkPromptBytes(
    promptBytes(task.input),
    promptBytesLimit(contextSize, loaded.maxTokenBytes),
    contextSize,
  );
  hooks = { ...hooks, grammar: await grammarFor(loaded.llama, task.sampling.grammar) };
  const prompt =
    task.input.kind === "prompt"
      ? promptTokens(loaded, task.input.prompt)
      : chatTokens(loaded, task.input.messages);
  const maxTokens = roomFor(
    prompt.tokens.length,
    loaded.context.contextSize,
    task.sampling.maxTokens,
  );
  // An older orchestrator's task may have no seed: one is drawn here, so it is still reported.
  const seed = task.sampling.seed ?? drawSeed();
  if (task.sampling.n !== undefined || task.sampling.logprobs !== undefined) {
    return generateChoices({ loaded, task, prompt, maxTokens, seed, hooks }).catch(
      (error: unknown) => {
        if (hooks.signal.aborted) return cancelledBeforeStart;
        throw error;
      },
    );
  }
  const lease = loaded.slots.acquire(prompt.tokens);
  hooks.onStarted?.(loaded.slots.inUse);
  // Tokens sampled on the sequence (node-llama-cpp's meter counts each decode with logits): the
  // job's completion tokens, exactly `maxTokens` when it stops for length. Counting the tokens
  // the library hands to `onToken` missed or added one now and then: it holds back tokens that
  // end in part of a character, and releases them with the next ones, or never at the end.
  const meter = lease.sequence.tokenMeter;
  const sampledBefore = meter.usedOutputTokens;
  let failed = false;
  try {
    const options = generationOptions(task, hooks, maxTokens, seed);
    const stopReason =
      prompt.kind === "prompt"
        ? await completePrompt(lease.sequence, prompt.input, options)
        : await completeChat(loaded, lease.sequence, prompt.history, options);
    return {
      finishReason: toFinishReason(stopReason),
      promptTokens: prompt.tokens.length,
      cachedTokens: lease.cachedTokens,
      completionTokens: meter.usedOutputTokens - sampledBefore,
      seed,
    };
  } catch (error) {
    failed = true;
    // node-llama-cpp throws (instead of stopping) when the signal fired just before it started.
    if (hooks.signal.aborted) return cancelledBeforeStart;
    throw error;
  } finally {
    // The sequence must be back in the cache before the job (and its slot in the pool) ends. After
    // a failure nothing is known of its state, so it is emptied.
    await lease.release({ keep: !failed });
  }
}

const cancelledBeforeStart: ThreadResult = Object.freeze({
  finishReason: "cancelled",
  promptTokens: 0,
  cachedTokens: 0,
  completionTokens: 0,
});

type PromptTokens =
  | { kind: "prompt"; input: Token[]; tokens: Token[] }
  | { kind: "chat"; history: ChatHistoryItem[]; tokens: Token[] };

/**
 * A completion prompt's tokens as node-llama-cpp will evaluate them: `input` is what it is given,
 * `tokens` adds the BOS token it prepends.
 */
function promptTokens(loaded: LoadedModel, prompt: string): PromptTokens {
  const { model } = loaded;
  const bos = model.tokens.shouldPrependBosToken ? model.tokens.bos : null;
  const input = model.tokenize(prompt, false, bos != null ? "trimLeadingSpace" : undefined);
  return { kind: "prompt", input, tokens: bos != null ? [bos, ...input] : input };
}

/** A chat's tokens: the messages rendered with the model's template, as LlamaChat will. */
function chatTokens(loaded: LoadedModel, messages: readonly ChatMessage[]): PromptTokens {
  const history = toChatHistory(messages);
  const { contextText } = loaded.chatWrapper.generateContextState({ chatHistory: history });
  return { kind: "chat", history, tokens: contextText.tokenize(loaded.model.tokenizer) };
}

type GenerationOptions = ReturnType<typeof generationOptions>;

async function completePrompt(
  sequence: LlamaContextSequence,
  input: Token[],
  options: GenerationOptions,
): Promise<string> {
  const completion = new LlamaCompletion({ contextSequence: sequence });
  try {
    const { metadata } = await completion.generateCompletionWithMeta(input, {
      ...options,
      // The prompt was checked to fit: never let the library drop its beginning silently.
      contextShiftSize: 1,
      disableContextShift: true,
    });
    return metadata.stopReason;
  } finally {
    completion.dispose({ disposeSequence: false });
  }
}

async function completeChat(
  loaded: LoadedModel,
  sequence: LlamaContextSequence,
  history: ChatHistoryItem[],
  options: GenerationOptions,
): Promise<string> {
  const chat = new LlamaChat({
    contextSequence: sequence,
    chatWrapper: loaded.chatWrapper,
    autoDisposeSequence: false,
  });
  try {
    const { metadata } = await chat.generateResponse(history, options);
    return metadata.stopReason;
  } finally {
    chat.dispose({ disposeSequence: false });
  }
}

/** Messages as node-llama-cpp's chat history, ending with the (possibly started) model response. */
export function toChatHistory(messages: readonly ChatMessage[]): ChatHistoryItem[] {
  const history: ChatHistoryItem[] = messages.map((message): ChatHistoryItem => {
    if (message.role === "system") return { type: "system", text: message.content };
    if (message.role === "user") return { type: "user", text: message.content };
    return { type: "model", response: [message.content] };
  });
  if (history.at(-1)?.type !== "model") history.push({ type: "model", response: [] });
  return history;
}

/** Options both kinds of generation share. Aborting stops generation and keeps the partial text. */
function generationOptions(
  task: GenerationTask,
  hooks: GenerateHooks,
  maxTokens: number,
  seed: number,
) {
  return {
    ...toLlamaSampling({ ...task.sampling, seed }),
    maxTokens,
    signal: hooks.signal,
    stopOnAbortSignal: true,
    onTextChunk: hooks.onText,
    ...(hooks.grammar === undefined ? {} : { grammar: hooks.grammar }),
  };
}

function roomFor(promptTokens: number, contextSize: number, maxTokens: number): number {
  const room = contextSize - promptTokens;
  if (room < 1) {
    throw new PromptTooLongError(
      `the prompt is ${promptTokens} tokens; this model's context holds ${contextSize} per request, including the reply`,
    );
  }
  return Math.min(maxTokens, room);
}

function toFinishReason(stopReason: string): FinishReason {
  if (stopReason === "maxTokens") return "length";
  if (stopReason === "abort") return "cancelled";
  return "stop";
}
