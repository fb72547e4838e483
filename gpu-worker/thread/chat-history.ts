import type { ChatHistoryItem, ChatModelFunctionCall, ChatModelResponse } from "node-llama-cpp";
import type { TaskMessage } from "../../shared/protocol/index.js";

/**
 * A task's messages as node-llama-cpp's chat history, ending with the (possibly started) model
 * response, so the model's chat wrapper renders them with its own template. An assistant
 * message's `tool_calls` become `functionCall` items of its model response, each with the result
 * of the `tool` message that answers it (by `tool_call_id`, checked at admission); an assistant
 * message after tool results continues the same model response, as the model's own turn would.
 * A result that is JSON text is given as that JSON, any other text as a JSON string.
 */
export function toChatHistory(messages: readonly TaskMessage[]): ChatHistoryItem[] {
  const history: ChatHistoryItem[] = [];
  /** The model response that the next tool results (and assistant text) continue. */
  let open: { response: ChatModelResponse; calls: Map<string, ChatModelFunctionCall> } | undefined;
  for (const message of messages) {
    if (message.role === "tool") {
      const call = open?.calls.get(message.toolCallId ?? "");
      if (call !== undefined) call.result = resultOf(message.content);
      continue;
    }
    if (message.role === "assistant") {
      const continues = open !== undefined && history.at(-1) === open.response;
      const response: ChatModelResponse = continues
        ? (open?.response as ChatModelResponse)
        : { type: "model", response: [] };
      if (message.content !== "") response.response.push(message.content);
      const calls = new Map<string, ChatModelFunctionCall>();
      for (const toolCall of message.toolCalls ?? []) {
        const call: ChatModelFunctionCall = {
          type: "functionCall",
          name: toolCall.name,
          params: JSON.parse(toolCall.arguments),
          result: null,
        };
        response.response.push(call);
        calls.set(toolCall.id, call);
      }
      if (!continues) history.push(response);
      open = calls.size > 0 ? { response, calls } : undefined;
      continue;
    }
    open = undefined;
    history.push(
      message.role === "system"
        ? { type: "system", text: message.content }
        : { type: "user", text: message.content },
    );
  }
  if (history.at(-1)?.type !== "model") history.push({ type: "model", response: [] });
  return history;
}

function resultOf(content: string): unknown {
  try {
    return JSON.parse(content);
  } catch {
    return content;
  }
}
