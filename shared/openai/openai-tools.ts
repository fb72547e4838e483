import { z } from "zod";
import { InvalidRequestError } from "../errors/index.js";

/**
 * Function calling on OpenAI's chat route: `tools`, `tool_choice`, `parallel_tool_calls`, and the
 * messages' `tool_calls` and `tool_call_id`. Read loosely here and copied field by field into the
 * pool's request, whose schema checks them (`shared/protocol/tool-request.ts`), with the same names.
 */

/** A function's fields: inside chat's `{"type": "function", "function": {...}}`, flat in Responses'. */
export const functionFields = {
  name: z.string({ error: "must be a string" }),
  description: z.string({ error: "must be a string" }).nullish(),
  parameters: z
    .record(z.string(), z.unknown(), { error: "must be a JSON Schema object" })
    .nullish(),
  strict: z.boolean({ error: "must be true or false" }).nullish(),
};

const toolDefinition = z.looseObject({
  type: z.literal("function", { error: 'only "function" tools are supported' }),
  function: z.looseObject(functionFields),
});

const toolChoice = z.union(
  [
    z.enum(["auto", "none", "required"]),
    z.looseObject({
      type: z.literal("function"),
      function: z.looseObject({ name: z.string({ error: "must be a string" }) }),
    }),
  ],
  { error: 'must be "auto", "none", "required" or {"type": "function", "function": {"name"}}' },
);

const toolCall = z.looseObject({
  id: z.string({ error: "must be a string" }),
  type: z.literal("function", { error: 'must be "function"' }),
  function: z.looseObject({
    name: z.string({ error: "must be a string" }),
    arguments: z.string({ error: "must be a string holding JSON" }),
  }),
});

/** The chat body's tool fields. */
export const openAiToolFields = {
  tools: z.array(toolDefinition, { error: "must be a list of function tools" }).nullish(),
  tool_choice: toolChoice.nullish(),
  parallel_tool_calls: z.boolean({ error: "must be true or false" }).nullish(),
};

/** A chat message's tool fields. */
export const openAiMessageToolFields = {
  tool_calls: z.array(toolCall, { error: "must be a list of tool calls" }).nullish(),
  tool_call_id: z.string({ error: "must be a string" }).optional(),
};

type ToolFields = {
  [K in keyof typeof openAiToolFields]?: z.infer<(typeof openAiToolFields)[K]>;
};
type MessageToolFields = {
  [K in keyof typeof openAiMessageToolFields]?: z.infer<(typeof openAiMessageToolFields)[K]>;
};

/**
 * The pool request's tool fields for a chat body (none when it has no tools). A JSON
 * `response_format` beside tools under `"auto"` is `INVALID_REQUEST` naming `response_format`
 * (the pool's request would name `sampling_params.json_schema`, a field the caller never sent).
 */
export function toolFieldsOf(
  body: ToolFields & { response_format?: { type: string } | null | undefined },
): Record<string, unknown> {
  const offered = (body.tools?.length ?? 0) > 0 && (body.tool_choice ?? "auto") === "auto";
  const format = body.response_format?.type;
  if (offered && (format === "json_object" || format === "json_schema")) {
    throw new InvalidRequestError(
      'request.response_format: cannot be combined with tools under tool_choice "auto": a reply is held to a format or may call functions, not both; use tool_choice "none" (the text follows the format) or "required" (a call)',
    );
  }
  const fields: Record<string, unknown> = {};
  if (body.tools != null && body.tools.length > 0) {
    fields.tools = body.tools.map(({ function: fn }) => ({
      type: "function",
      function: {
        name: fn.name,
        ...(fn.description == null ? {} : { description: fn.description }),
        ...(fn.parameters == null ? {} : { parameters: fn.parameters }),
      },
    }));
  }
  const choice = body.tool_choice;
  // "none" without tools is what no tools means: accepted, as OpenAI does.
  if (choice != null && !(choice === "none" && fields.tools === undefined)) {
    fields.tool_choice =
      typeof choice === "string"
        ? choice
        : { type: "function", function: { name: choice.function.name } };
  }
  if (body.parallel_tool_calls != null && fields.tools !== undefined) {
    fields.parallel_tool_calls = body.parallel_tool_calls;
  }
  return fields;
}

/** A message's tool fields in the pool's request. */
export function messageToolFieldsOf(message: MessageToolFields): Record<string, unknown> {
  const fields: Record<string, unknown> = {};
  if (message.tool_calls != null && message.tool_calls.length > 0) {
    fields.tool_calls = message.tool_calls.map((call) => ({
      id: call.id,
      type: "function",
      function: { name: call.function.name, arguments: call.function.arguments },
    }));
  }
  if (message.tool_call_id !== undefined) fields.tool_call_id = message.tool_call_id;
  return fields;
}
