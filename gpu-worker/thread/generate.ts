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
} from "../../shared/protocol/index.js";
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
  /** Structured output: the grammar the text is held to (compiled from the task's). */
  grammar?: LlamaGrammar | undefined;
}

/**
 * Runs one job on a sequence of its own, which is freed when the job ends (however it ends), so the
 * next job can use it. The prompt must fit the sequence without truncation: a prompt that leaves
 * no room for one token fails with `PROMPT_TOO_LONG`, and `max_tokens` is capped by the room left.
 */
export async function generate(
  loaded: LoadedModel,
  task: GenerationTask,
  hooks: GenerateHooks,
): Promise<ThreadResult> {
  if (hooks.signal.aborted) return cancelledBeforeStart;
  hooks = { ...hooks, grammar: await grammarFor(loaded.llama, task.sampling.grammar) };
  const sequence = loaded.context.getSequence();
  hooks.onStarted?.(loaded.context.totalSequences - loaded.context.sequencesLeft);
  try {
    return task.input.kind === "prompt"
      ? await completePrompt(loaded, sequence, task.input.prompt, task, hooks)
      : await completeChat(loaded, sequence, task.input.messages, task, hooks);
  } catch (error) {
    // node-llama-cpp throws (instead of stopping) when the signal fired just before it started.
    if (hooks.signal.aborted && !(error instanceof PromptTooLongError)) return cancelledBeforeStart;
    throw error;
  } finally {
    // Disposal returns the sequence to the context asynchronously: the job (and its slot in the
    // pool) must not end before the sequence is free for the next one.
    await sequence.dispose();
  }
}

const cancelledBeforeStart: ThreadResult = Object.freeze({
  finishReason: "cancelled",
  promptTokens: 0,
  completionTokens: 0,
});

async function completePrompt(
  loaded: LoadedModel,
  sequence: LlamaContextSequence,
  prompt: string,
  task: GenerationTask,
  hooks: GenerateHooks,
): Promise<ThreadResult> {
  const { model } = loaded;
  const prependsBos = model.tokens.bos != null && model.tokens.shouldPrependBosToken;
  const tokens: Token[] = model.tokenize(
    prompt,
    false,
    prependsBos ? "trimLeadingSpace" : undefined,
  );
  const promptTokens = tokens.length + (prependsBos ? 1 : 0);
  const maxTokens = roomFor(promptTokens, loaded.context.contextSize, task.sampling.maxTokens);
  const counted = { completionTokens: 0 };
  const completion = new LlamaCompletion({ contextSequence: sequence });
  try {
    const { metadata } = await completion.generateCompletionWithMeta(tokens, {
      ...generationOptions(task, hooks, maxTokens, counted),
      // The prompt was checked to fit: never let the library drop its beginning silently.
      contextShiftSize: 1,
      disableContextShift: true,
    });
    return { finishReason: toFinishReason(metadata.stopReason), promptTokens, ...counted };
  } finally {
    completion.dispose({ disposeSequence: false });
  }
}

async function completeChat(
  loaded: LoadedModel,
  sequence: LlamaContextSequence,
  messages: readonly ChatMessage[],
  task: GenerationTask,
  hooks: GenerateHooks,
): Promise<ThreadResult> {
  const chat = new LlamaChat({ contextSequence: sequence, autoDisposeSequence: false });
  try {
    const history = toChatHistory(messages);
    const { contextText } = chat.chatWrapper.generateContextState({ chatHistory: history });
    const promptTokens = contextText.tokenize(loaded.model.tokenizer).length;
    const maxTokens = roomFor(promptTokens, loaded.context.contextSize, task.sampling.maxTokens);
    const counted = { completionTokens: 0 };
    const { metadata } = await chat.generateResponse(
      history,
      generationOptions(task, hooks, maxTokens, counted),
    );
    return { finishReason: toFinishReason(metadata.stopReason), promptTokens, ...counted };
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

/**
 * Options both kinds of generation share. Tokens are counted as generated (re-tokenising the text
 * can differ by one); aborting stops generation and keeps the partial text.
 */
function generationOptions(
  task: GenerationTask,
  hooks: GenerateHooks,
  maxTokens: number,
  counted: { completionTokens: number },
) {
  return {
    ...toLlamaSampling(task.sampling),
    maxTokens,
    signal: hooks.signal,
    stopOnAbortSignal: true,
    onToken: (generated: Token[]) => {
      counted.completionTokens += generated.length;
    },
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
