import type { ToolCallPiece } from "../protocol/index.js";

/**
 * Function calls in OpenAI's chat answer: a streamed chunk's `delta.tool_calls` (a call's first
 * piece with its `id`, `type` and `function.name`, its arguments in the pieces after), and a whole
 * reply's `message.tool_calls`.
 */

/** A chunk's pieces as `delta.tool_calls` entries, keyed by the call's `index`. */
export function openAiToolCallDeltas(pieces: readonly ToolCallPiece[]): object[] {
  return pieces.map((piece) => {
    const first = piece.id !== undefined;
    return {
      index: piece.index,
      ...(first ? { id: piece.id, type: "function" } : {}),
      function: {
        ...(piece.name === undefined ? {} : { name: piece.name }),
        arguments: piece.arguments ?? "",
      },
    };
  });
}

/** A reply's whole calls as `message.tool_calls`. */
export function openAiToolCalls(
  calls: readonly { id: string; name: string; arguments: string }[],
): object[] {
  return calls.map((call) => ({
    id: call.id,
    type: "function",
    function: { name: call.name, arguments: call.arguments },
  }));
}
