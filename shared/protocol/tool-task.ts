import { z } from "zod";
import type { ToolChoice, ToolDefinition } from "./tool-request.js";

/**
 * Function calling as a model thread runs it: the functions it may call (`parameters` checked at
 * admission), and what the reply must be. `choice` is `"auto"` (text or calls, the model decides),
 * `"required"` (at least one call, of any function) or a function's name (a call of that one);
 * a request with `tool_choice: "none"` has functions too: they are shown in the prompt's history
 * only, never offered.
 */
export const toolTaskSchema = z.strictObject({
  functions: z.array(
    z.strictObject({
      name: z.string(),
      description: z.string().optional(),
      parameters: z.record(z.string(), z.unknown()).optional(),
    }),
  ),
  choice: z.union([z.enum(["auto", "none", "required"]), z.strictObject({ name: z.string() })]),
  /** `parallel_tool_calls`: false allows one call per reply. */
  parallel: z.boolean(),
});

export type ToolTask = z.infer<typeof toolTaskSchema>;

/** The task's tools for a request: `undefined` when it has none. */
export function toolTaskOf(request: {
  tools?: readonly ToolDefinition[] | undefined;
  tool_choice?: ToolChoice | undefined;
  parallel_tool_calls?: boolean | undefined;
}): ToolTask | undefined {
  if (request.tools === undefined || request.tools.length === 0) return undefined;
  const choice = request.tool_choice ?? "auto";
  return {
    functions: request.tools.map(({ function: fn }) => ({
      name: fn.name,
      ...(fn.description === undefined ? {} : { description: fn.description }),
      ...(fn.parameters === undefined ? {} : { parameters: fn.parameters }),
    })),
    choice: typeof choice === "string" ? choice : { name: choice.function.name },
    parallel: request.parallel_tool_calls ?? true,
  };
}
