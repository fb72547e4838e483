import { randomBytes } from "node:crypto";
import type {
  ChatModelFunctions,
  ChatWrapper,
  ChatWrapperGenerateContextStateOptions,
  ChatWrapperGeneratedContextState,
} from "node-llama-cpp";
import type { ToolCallPiece, ToolTask } from "../../shared/protocol/index.js";
import { anyOfAsOneOf } from "./grammar.js";
import { JsonObjectText } from "./json-object-text.js";

/**
 * Function calling for one chat job, through node-llama-cpp's own: the functions are documented in
 * the prompt by the model's chat wrapper (its syntax for calls and results), and a call is
 * generated under node-llama-cpp's grammars (a defined function's name, then arguments held to its
 * JSON Schema), so even a weak model's call is valid.
 *
 * - `auto`: the functions are offered; the model answers with text, calls, or both.
 * - `required` or a named function: the model's reply starts in function-calling mode, as for chat
 *   wrappers whose models always begin with a call (node-llama-cpp's "initially engaged" mode, with
 *   no way out): it must call one of the offered functions (the named one only; all stay documented).
 * - `none` (and no tools): no function is offered or documented; calls earlier in the conversation
 *   still render. Only then may a grammar (`response_format`) hold the text: node-llama-cpp takes
 *   functions or a grammar, not both (admission refuses the pair under `auto`; under `required` or
 *   a named function the reply is a call, and the grammar, which is for text, is not used).
 */
export interface ChatTools {
  /** The wrapper that renders the prompt and drives generation. */
  chatWrapper: ChatWrapper;
  /** Functions documented in the prompt (for counting its tokens as LlamaChat will render it). */
  documented: ChatModelFunctions | undefined;
  /** Options for `LlamaChat.generateResponse`; empty when no function is offered. */
  options: ToolOptions;
}

type ToolOptions =
  | Record<string, never>
  | {
      functions: ChatModelFunctions;
      documentFunctionParams: true;
      maxParallelFunctionCalls?: number;
      onFunctionCallParamsChunk: (chunk: {
        callIndex: number;
        paramsChunk: string;
        functionName: string;
      }) => void;
      onFunctionCall: (call: { functionName: string }) => void;
    };

/** What a job's chat needs for its tools; `onPiece` gets each piece of each call as generated. */
export function chatTools(
  wrapper: ChatWrapper,
  tools: ToolTask | undefined,
  onPiece: (piece: ToolCallPiece) => void,
): ChatTools {
  if (tools === undefined || tools.choice === "none") {
    return { chatWrapper: wrapper, documented: undefined, options: {} };
  }
  const documented = functionsOf(tools);
  const { choice } = tools;
  const offered =
    typeof choice === "object"
      ? { [choice.name]: documented[choice.name] as ChatModelFunctions[string] }
      : documented;
  const forced = choice !== "auto";
  return {
    chatWrapper: forced ? forcingCalls(wrapper, documented) : wrapper,
    documented,
    options: {
      functions: offered,
      documentFunctionParams: true,
      ...(tools.parallel ? {} : { maxParallelFunctionCalls: 1 }),
      ...callPieces(onPiece),
    },
  };
}

/** The functions in node-llama-cpp's shape (`anyOf` read as `oneOf`, as for `json_schema`). */
function functionsOf(tools: ToolTask): ChatModelFunctions {
  const functions: Record<string, ChatModelFunctions[string]> = {};
  for (const fn of tools.functions) {
    functions[fn.name] = {
      ...(fn.description === undefined ? {} : { description: fn.description }),
      // biome-ignore lint/suspicious/noExplicitAny: node-llama-cpp types schemas by their literal shape.
      ...(fn.parameters === undefined ? {} : { params: anyOfAsOneOf(fn.parameters) as any }),
    };
  }
  return functions;
}

/**
 * The model's wrapper, rendering every tool in the prompt and starting the reply in
 * function-calling mode with no way out: the reply is a call.
 */
function forcingCalls(wrapper: ChatWrapper, documented: ChatModelFunctions): ChatWrapper {
  const forced = Object.create(wrapper) as ChatWrapper;
  forced.generateContextState = (
    options: ChatWrapperGenerateContextStateOptions,
  ): ChatWrapperGeneratedContextState => {
    const state = wrapper.generateContextState({ ...options, availableFunctions: documented });
    const { contextText, stopGenerationTriggers, ignoreStartText } = state;
    return {
      contextText,
      stopGenerationTriggers,
      ...(ignoreStartText === undefined ? {} : { ignoreStartText }),
      functionCall: { initiallyEngaged: true, disengageInitiallyEngaged: [] },
    };
  };
  return forced;
}

/**
 * node-llama-cpp's call callbacks as pieces: a call's first piece has its new `id` and `name`,
 * then its arguments as generated (the text after the JSON object, the wrapper's call syntax, left
 * out); a function without parameters gets `{}`.
 */
function callPieces(onPiece: (piece: ToolCallPiece) => void) {
  const calls: JsonObjectText[] = [];
  let ended = 0;
  const start = (index: number, name: string): JsonObjectText => {
    const call = new JsonObjectText();
    calls[index] = call;
    onPiece({ index, id: newCallId(), name });
    return call;
  };
  return {
    onFunctionCallParamsChunk: (chunk: {
      callIndex: number;
      paramsChunk: string;
      functionName: string;
    }) => {
      const call = calls[chunk.callIndex] ?? start(chunk.callIndex, chunk.functionName);
      const text = call.take(chunk.paramsChunk);
      if (text !== "") onPiece({ index: chunk.callIndex, arguments: text });
    },
    onFunctionCall: (call: { functionName: string }) => {
      const index = ended;
      ended += 1;
      if (calls[index] === undefined) {
        start(index, call.functionName);
        onPiece({ index, arguments: "{}" });
      }
    },
  };
}

/** OpenAI's form of a call id: `call_` and 24 random letters and digits. */
export function newCallId(): string {
  return `call_${randomBytes(18).toString("base64url").replace(/[-_]/g, "0").slice(0, 24)}`;
}
