import { z } from "zod";
import { jsonSchemaIssues } from "./json-schema.js";

/**
 * Function calling in the native request, in OpenAI's shape: `tools` (function definitions whose
 * `parameters` is a JSON Schema checked like `json_schema`), `tool_choice`, `parallel_tool_calls`,
 * and the conversation's assistant `tool_calls` and `tool` messages. Checked at admission, so a
 * model thread only meets definitions it can hold a call to.
 */

/** OpenAI's rule for function names. */
const toolName = z
  .string({ error: "must be a string" })
  .regex(/^[a-zA-Z0-9_-]{1,64}$/, { error: "must be 1 to 64 letters, digits, _ or -" });

export const toolDefinitionSchema = z.strictObject({
  type: z.literal("function", { error: 'must be "function"' }),
  function: z.strictObject({
    name: toolName,
    description: z
      .string({ error: "must be a string" })
      .max(8192, { error: "must be at most 8192 characters" })
      .optional(),
    /** A JSON Schema of `type: "object"`: the call's arguments. Absent: a call takes none. */
    parameters: z
      .record(z.string(), z.unknown(), { error: "must be a JSON Schema object" })
      .superRefine((schema, context) => {
        if (schema.type !== "object") {
          context.addIssue({ code: "custom", path: ["type"], message: 'must be "object"' });
        }
        for (const issue of jsonSchemaIssues(schema)) {
          context.addIssue({ code: "custom", path: issue.path, message: issue.message });
        }
      })
      .optional(),
    /** OpenAI's strict mode: calls are always held to the schema here, so it changes nothing. */
    strict: z.boolean({ error: "must be true or false" }).nullish(),
  }),
});

export const toolChoiceSchema = z.union(
  [
    z.enum(["auto", "none", "required"]),
    z.strictObject({
      type: z.literal("function"),
      function: z.strictObject({ name: toolName }),
    }),
  ],
  { error: 'must be "auto", "none", "required" or {"type": "function", "function": {"name"}}' },
);

/** A call the assistant made, as an earlier turn of the conversation. */
export const toolCallSchema = z.strictObject({
  id: z
    .string({ error: "must be a string" })
    .min(1, { error: "must not be empty" })
    .max(256, { error: "must be at most 256 characters" }),
  type: z.literal("function", { error: 'must be "function"' }),
  function: z.strictObject({
    name: toolName,
    /** A JSON text (OpenAI's shape), parsed when the conversation is rendered. */
    arguments: z.string({ error: "must be a string holding JSON" }).refine(isJsonObjectText, {
      error: "must be a string holding a JSON object",
    }),
  }),
});

export type ToolDefinition = z.infer<typeof toolDefinitionSchema>;
export type ToolChoice = z.infer<typeof toolChoiceSchema>;
export type ToolCall = z.infer<typeof toolCallSchema>;

function isJsonObjectText(text: string): boolean {
  try {
    const value: unknown = JSON.parse(text);
    return typeof value === "object" && value !== null && !Array.isArray(value);
  } catch {
    return false;
  }
}

/** What the tool checks need of a request (the native request's fields). */
interface ToolFields {
  tools?: readonly ToolDefinition[] | undefined;
  tool_choice?: ToolChoice | undefined;
  messages?:
    | readonly {
        role: string;
        content?: string | null | undefined;
        tool_calls?: readonly ToolCall[] | undefined;
        tool_call_id?: string | undefined;
      }[]
    | undefined;
  sampling_params?: { json_schema?: unknown; grammar?: unknown } | undefined;
}

export interface ToolIssue {
  path: (string | number)[];
  message: string;
}

/**
 * The checks that span fields: unique tool names, a `tool_choice` that names a defined function
 * (and needs `tools`), tool messages that answer a call of the assistant message before them, each
 * call answered, and no JSON `response_format` beside tools under `"auto"` (node-llama-cpp offers
 * functions or holds a reply to a grammar, not both at once).
 */
export function toolIssues(request: ToolFields): ToolIssue[] {
  const issues: ToolIssue[] = [];
  const tools = request.tools ?? [];
  const names = new Set<string>();
  tools.forEach((tool, index) => {
    if (names.has(tool.function.name)) {
      issues.push({
        path: ["tools", index, "function", "name"],
        message: "is the name of an earlier tool: names must be unique",
      });
    }
    names.add(tool.function.name);
  });
  const choice = request.tool_choice;
  if (choice !== undefined && choice !== "none" && tools.length === 0) {
    issues.push({ path: ["tool_choice"], message: 'needs "tools" (or is "none")' });
  } else if (typeof choice === "object" && !names.has(choice.function.name)) {
    issues.push({
      path: ["tool_choice", "function", "name"],
      message: 'names no function of "tools"',
    });
  }
  const offered = tools.length > 0 && (choice === undefined || choice === "auto");
  const params = request.sampling_params;
  if (offered && (params?.json_schema != null || params?.grammar != null)) {
    issues.push({
      path: ["sampling_params", params.json_schema != null ? "json_schema" : "grammar"],
      message:
        'cannot be combined with tools under tool_choice "auto": a reply is held to a grammar or may call functions, not both; use tool_choice "none" (the text follows the grammar) or "required" (a call)',
    });
  }
  issues.push(...toolMessageIssues(request.messages ?? []));
  return issues;
}

/** Tool messages must answer the calls of the assistant message before them, each call once. */
function toolMessageIssues(messages: NonNullable<ToolFields["messages"]>): ToolIssue[] {
  const issues: ToolIssue[] = [];
  /** Calls of the latest assistant message not answered yet, by id. */
  let open = new Map<string, number>();
  let openSince = -1;
  const unanswered = () => {
    for (const call of open.values()) {
      issues.push({
        path: ["messages", openSince, "tool_calls", call, "id"],
        message: 'has no "tool" message answering it (by tool_call_id) after this message',
      });
    }
  };
  messages.forEach((message, index) => {
    if (message.role === "tool") {
      const id = message.tool_call_id ?? "";
      if (!open.delete(id)) {
        issues.push({
          path: ["messages", index, "tool_call_id"],
          message: "answers no unanswered tool call of the assistant message before it",
        });
      }
      return;
    }
    unanswered();
    open = new Map();
    openSince = index;
    if (message.role === "assistant") {
      message.tool_calls?.forEach((call, callIndex) => {
        if (open.has(call.id)) {
          issues.push({
            path: ["messages", index, "tool_calls", callIndex, "id"],
            message: "is the id of an earlier call of this message",
          });
        }
        open.set(call.id, callIndex);
      });
    }
  });
  unanswered();
  return issues;
}
