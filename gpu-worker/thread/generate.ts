import {
  type ChatHistoryItem,
  type ChatModelFunctions,
  LlamaChat,
  LlamaCompletion,
  type LlamaContextSequence,
  type LlamaGrammar,
  type Token,
} from "node-llama-cpp";
import { InternalError, PromptTooLongError, WorkerLostError } from "../../shared/errors/index.js";
import type {
  Continuation,
  FinishReason,
  GenerationTask,
  TaskMessage,
  ThreadResult,
  TokenLogprob,
  ToolCallPiece,
} from "../../shared/protocol/index.js";
import {
  checkPromptBytes,
  drawSeed,
  promptBytes,
  promptBytesLimit,
} from "../../shared/protocol/index.js";
import { toChatHistory } from "./chat-history.js";
import { generateChoices } from "./choices.js";
import { continueGeneration } from "./continue.js";
import { grammarFor } from "./grammar.js";
import { cancelledBeforeStart, runOnLeasedSequence } from "./leased-run.js";
import type { LoadedModel } from "./load-model.js";
import { toLlamaSampling } from "./sampling-options.js";
import { type ChatTools, chatTools } from "./tool-calls.js";

export interface GenerateHooks {
  /** Aborting ends generation early with finish reason `cancelled`. */
  signal: AbortSignal;
  /**
   * Called with each piece of text as soon as it is safe to show (stop strings held back), with
   * the ids of the tokens whose text it is (absent for a job that calls functions: such a job is
   * not continued elsewhere, see `continue.ts`).
   */
  onText: (text: string, tokens?: readonly number[]) => void;
  /** Called once the job holds a sequence, with how many of the context's sequences are taken. */
  onStarted?: (sequencesInUse: number) => void;
  /**
   * A job with `n` > 1 or logprobs: each choice's text, with its tokens' logprobs when asked
   * (`onText` gets choice 0's text without them when this is not given).
   */
  onChoiceText?: (index: number, text: string, logprobs: TokenLogprob[] | undefined) => void;
  /** Structured output: the grammar the text is held to (compiled from the task's). */
  grammar?: LlamaGrammar | undefined;
  /** Function calling: each piece of each call, as generated (`tool-calls.ts`). */
  onToolCall?: (piece: ToolCallPiece) => void;
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
  continuation?: Continuation,
): Promise<ThreadResult> {
  if (hooks.signal.aborted) return cancelledBeforeStart;
  const { contextSize } = loaded.context;
  // Before tokenizing: a prompt of more bytes than any context-full of tokens is refused at once.
  checkPromptBytes(
    promptBytes(task.input),
    promptBytesLimit(contextSize, loaded.maxTokenBytes),
    contextSize,
  );
  // Embeddings run in `embed.ts`, never here.
  if (task.input.kind === "embed") throw new InternalError("an embeddings task reached generation");
  const tools = chatTools(loaded.chatWrapper, task.tools, (piece) => hooks.onToolCall?.(piece));
  // node-llama-cpp takes functions or a grammar: a reply that may call functions has no grammar.
  const grammar = "functions" in tools.options ? undefined : task.sampling.grammar;
  hooks = { ...hooks, grammar: await grammarFor(loaded.llama, grammar) };
  const prompt =
    task.input.kind === "prompt"
      ? promptTokens(loaded, task.input.prompt)
      : chatTokens(tools, loaded, task.input.messages);
  const maxTokens = roomFor(
    prompt.tokens.length,
    loaded.context.contextSize,
    task.sampling.maxTokens,
  );
  // An older orchestrator's task may have no seed: one is drawn here, so it is still reported.
  const seed = task.sampling.seed ?? drawSeed();
  if (continuation !== undefined) {
    if ("functions" in tools.options) {
      throw new WorkerLostError("a job that may call functions is not continued");
    }
    return continueGeneration({ loaded, task, prompt, maxTokens, seed, continuation, hooks });
  }
  if (task.sampling.n !== undefined || task.sampling.logprobs !== undefined) {
    return generateChoices({ loaded, task, prompt, maxTokens, seed, hooks }).catch(
      (error: unknown) => {
        if (hooks.signal.aborted) return cancelledBeforeStart;
        throw error;
      },
    );
  }
  return runOnLeasedSequence(loaded, prompt.tokens, hooks, { seed }, async (sequence) => {
    const options = generationOptions(task, hooks, maxTokens, seed, continuable(prompt, tools));
    return toFinishReason(
      prompt.kind === "prompt"
        ? await completePrompt(sequence, prompt.input, options)
        : await completeChat(tools, sequence, prompt.history, options),
    );
  });
}

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

/** A chat's tokens: the messages (and tools) rendered with the model's template, as LlamaChat will. */
function chatTokens(
  tools: ChatTools,
  loaded: LoadedModel,
  messages: readonly TaskMessage[],
): PromptTokens {
  const history = toChatHistory(messages);
  const { contextText } = tools.chatWrapper.generateContextState({
    chatHistory: history,
    ...functionsDocumented(tools.documented),
  });
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
  tools: ChatTools,
  sequence: LlamaContextSequence,
  history: ChatHistoryItem[],
  options: GenerationOptions,
): Promise<string> {
  const chat = new LlamaChat({
    contextSequence: sequence,
    chatWrapper: tools.chatWrapper,
    autoDisposeSequence: false,
  });
  try {
    // Functions and a grammar exclude each other (`generate` leaves the grammar out then).
    const { grammar: _grammar, ...withoutGrammar } = options;
    const { metadata } = await chat.generateResponse(
      history,
      "functions" in tools.options ? { ...withoutGrammar, ...tools.options } : options,
    );
    return metadata.stopReason;
  } finally {
    chat.dispose({ disposeSequence: false });
  }
}

/** The prompt's functions, as LlamaChat documents those it is given. */
function functionsDocumented(functions: ChatModelFunctions | undefined) {
  return functions === undefined
    ? {}
    : { availableFunctions: functions, documentFunctionParams: true };
}

/**
 * Options both kinds of generation share. Aborting stops generation and keeps the partial text.
 * With `withTokens`, each piece of text goes out with its tokens' ids: node-llama-cpp calls
 * `onToken` with the tokens it releases and at once `onTextChunk` with their text (what it holds
 * back for a stop string or an unfinished character it releases later, tokens and text together).
 */
function generationOptions(
  task: GenerationTask,
  hooks: GenerateHooks,
  maxTokens: number,
  seed: number,
  withTokens: boolean,
) {
  let released: Token[] | undefined;
  return {
    ...toLlamaSampling({ ...task.sampling, seed }),
    maxTokens,
    signal: hooks.signal,
    stopOnAbortSignal: true,
    ...(withTokens
      ? {
          onToken: (tokens: Token[]) => {
            released = tokens;
          },
          onTextChunk: (text: string) => {
            const tokens = released;
            released = undefined;
            hooks.onText(text, tokens);
          },
        }
      : { onTextChunk: (text: string) => hooks.onText(text) }),
    ...(hooks.grammar === undefined ? {} : { grammar: hooks.grammar }),
  };
}

/**
 * Whether the job's deltas carry their token ids, so that another gpu-worker can go on from them:
 * not for a reply that may call functions, nor for a chat template with segments (a model's
 * thoughts), whose tokens node-llama-cpp does not hand to `onToken`.
 */
function continuable(prompt: PromptTokens, tools: ChatTools): boolean {
  if ("functions" in tools.options) return false;
  if (prompt.kind === "prompt") return true;
  const segments = tools.chatWrapper.settings.segments;
  return segments?.thought === undefined && segments?.comment === undefined;
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
  if (stopReason === "functionCalls") return "tool_calls";
  return "stop";
}
