import { z } from "zod";

/**
 * A piece of a function call as it is generated (the `tool_calls` of a delta chunk and of a delta
 * reply): a call's first piece has its `id` and `name`, later pieces add `arguments` text. `index`
 * counts the reply's calls from 0; the `arguments` pieces of a call, joined, are a JSON object's
 * text that validates against the function's `parameters`.
 */
export const toolCallPieceSchema = z.strictObject({
  index: z.number().int().min(0),
  id: z.string().optional(),
  name: z.string().optional(),
  arguments: z.string().optional(),
});

export type ToolCallPiece = z.infer<typeof toolCallPieceSchema>;

/** A reply's whole calls, from its pieces in order: `{id, name, arguments}` per call index. */
export function assembleToolCalls(
  pieces: Iterable<ToolCallPiece>,
): { id: string; name: string; arguments: string }[] {
  const calls: { id: string; name: string; arguments: string }[] = [];
  for (const piece of pieces) {
    let call = calls[piece.index];
    if (call === undefined) {
      call = { id: "", name: "", arguments: "" };
      calls[piece.index] = call;
    }
    if (piece.id !== undefined) call.id = piece.id;
    if (piece.name !== undefined) call.name = piece.name;
    if (piece.arguments !== undefined) call.arguments += piece.arguments;
  }
  return calls.filter((call) => call !== undefined);
}
