import { z } from "zod";
import { InvalidRequestError } from "../errors/index.js";
import { describeIssues } from "../protocol/index.js";
import { functionFields } from "./openai-tools.js";

/**
 * OpenAI's Responses API (`POST /v1/responses`) as a translation onto chat completions: a
 * Responses body becomes the chat body the pool already takes (instructions and input items as
 * messages, flat function tools as chat tools, `text.format` as `response_format`), and the
 * request fields a Response object echoes are kept for the answer. The server is stateless: what
 * would need a stored response or conversation (`previous_response_id`, `conversation`,
 * `store: true`, `background`, item references) is refused by name, as is every tool other than a
 * function and every input part other than text.
 */

const stateless = "this server keeps no responses; send the whole conversation as input items";
const refused = (why: string) => z.undefined({ error: why }).nullish();

/** A message item's text part (`output_text` is how an earlier answer's text comes back). */
const textPart = z.looseObject({
  type: z.enum(["input_text", "output_text"], {
    error: 'only text parts ("input_text", "output_text") are supported',
  }),
  text: z.string({ error: "must be a string" }),
});

const messageContent = z.union(
  [z.string(), z.array(textPart, { error: "must be a string or a list of text parts" })],
  { error: "must be a string or a list of text parts" },
);

const messageItem = z.looseObject({
  type: z.literal("message").optional(),
  role: z.enum(["user", "assistant", "system", "developer"], {
    error: 'must be "user", "assistant", "system" or "developer"',
  }),
  content: messageContent,
});

const functionCallItem = z.looseObject({
  type: z.literal("function_call"),
  call_id: z.string({ error: "must be a string" }),
  name: z.string({ error: "must be a string" }),
  arguments: z.string({ error: "must be a JSON string" }),
});

const functionCallOutputItem = z.looseObject({
  type: z.literal("function_call_output"),
  call_id: z.string({ error: "must be a string" }),
  output: messageContent,
});

const itemTypes = '"message", "function_call" or "function_call_output"';

/** One input item; an item of another type is refused naming its type. */
const inputItem = z.unknown().transform((value, context) => {
  const type = (value as { type?: unknown } | null)?.type;
  const schema =
    type === undefined || type === "message"
      ? messageItem
      : type === "function_call"
        ? functionCallItem
        : type === "function_call_output"
          ? functionCallOutputItem
          : undefined;
  if (schema === undefined) {
    const named = typeof type === "string" && /^[a-z_]{1,40}$/.test(type) ? `"${type}" ` : "";
    const why =
      type === "item_reference" ? `: ${stateless}` : ` (the supported items are ${itemTypes})`;
    context.addIssue({
      code: "custom",
      path: ["type"],
      message: `${named}items are not supported${why}`,
    });
    return z.NEVER;
  }
  const parsed = schema.safeParse(value);
  if (!parsed.success) {
    for (const issue of parsed.error.issues) context.addIssue({ ...issue, code: "custom" });
    return z.NEVER;
  }
  return parsed.data;
});

const inputItems = z.array(inputItem);

/** `input`: text (one user message) or a list of items, whose issues are named item by item. */
const inputSchema = z.unknown().transform((value, context): string | Item[] => {
  if (typeof value === "string") return value;
  if (!Array.isArray(value)) {
    context.addIssue({ code: "custom", message: "must be a string or a list of input items" });
    return z.NEVER;
  }
  const parsed = inputItems.safeParse(value);
  if (parsed.success) return parsed.data;
  for (const issue of parsed.error.issues) context.addIssue({ ...issue, code: "custom" });
  return z.NEVER;
});

/** Responses' flat function tool; other tool types (web_search, file_search, mcp, ...) are refused. */
const functionTool = z.looseObject({
  type: z.literal("function", {
    error: "only function tools are supported (no hosted tools: web search, file search, ...)",
  }),
  ...functionFields,
});

const toolChoice = z.union(
  [
    z.enum(["auto", "none", "required"]),
    z.looseObject({ type: z.literal("function"), name: z.string() }),
  ],
  { error: 'must be "auto", "none", "required" or {"type": "function", "name": ...}' },
);

const textFormat = z.discriminatedUnion(
  "type",
  [
    z.looseObject({ type: z.literal("text") }),
    z.looseObject({ type: z.literal("json_object") }),
    z.looseObject({
      type: z.literal("json_schema"),
      name: z.string({ error: "must be a string" }).optional(),
      schema: z.record(z.string(), z.unknown(), { error: "must be a JSON Schema object" }),
    }),
  ],
  { error: 'must be {"type": "text" | "json_object" | "json_schema", ...}' },
);

const number = z.number({ error: "must be a number" }).nullish();

export const responsesSchema = z.strictObject({
  model: z.string({ error: "must be a string" }).optional(),
  input: inputSchema,
  instructions: z.string({ error: "must be a string" }).nullish(),
  max_output_tokens: number,
  temperature: number,
  top_p: number,
  /** Not in OpenAI's Responses API; taken as on chat completions, to repeat a sampled answer. */
  seed: number,
  tools: z.array(functionTool, { error: "must be a list of function tools" }).nullish(),
  tool_choice: toolChoice.nullish(),
  parallel_tool_calls: z.boolean({ error: "must be true or false" }).nullish(),
  text: z
    .strictObject({
      format: textFormat.nullish(),
      verbosity: z
        .enum(["medium"], { error: 'is not supported (only "medium", the default)' })
        .nullish(),
    })
    .nullish(),
  stream: z.boolean({ error: "must be true or false" }).nullish(),
  stream_options: z.looseObject({}).nullish(),
  store: z
    .boolean({ error: "must be true or false" })
    .nullish()
    .refine((value) => value !== true, {
      error: `true is not supported: ${stateless} (send false or leave it out)`,
    }),
  previous_response_id: refused(`is not supported: ${stateless}`),
  conversation: refused(`is not supported: ${stateless}`),
  background: z
    .boolean({ error: "must be true or false" })
    .nullish()
    .refine((value) => value !== true, {
      error: "true is not supported: responses are answered while the request waits",
    }),
  prompt: refused("is not supported (stored prompt templates need stored state)"),
  include: z
    .array(z.unknown())
    .max(0, { error: "is not supported (nothing extra can be included)" })
    .nullish(),
  reasoning: refused("is not supported (the served models have no reasoning settings)"),
  top_logprobs: refused("is not supported"),
  max_tool_calls: refused("is not supported"),
  truncation: z
    .enum(["disabled"], { error: 'must be "disabled": a prompt too long is refused' })
    .nullish(),
  context_management: refused("is not supported"),
  metadata: z.unknown().optional(),
  user: z.string().optional(),
  safety_identifier: z.unknown().optional(),
  prompt_cache_key: z.unknown().optional(),
  prompt_cache_retention: z.unknown().optional(),
  service_tier: z.unknown().optional(),
});

export type ResponsesBody = z.infer<typeof responsesSchema>;

/** The request fields a Response object repeats (the request's or OpenAI's defaults). */
export const responsesEchoSchema = z.record(z.string(), z.unknown());
export type ResponsesEcho = z.infer<typeof responsesEchoSchema>;

type Item = z.output<typeof inputItem>;
type ChatMessage = Record<string, unknown> & {
  role: string;
  tool_calls?: Record<string, unknown>[];
};

/**
 * Checks a Responses body and gives the chat-completions body that means the same request, and
 * what its Response object echoes. Throws `INVALID_REQUEST` naming the bad fields.
 */
export function readResponsesBody(body: unknown): {
  chat: Record<string, unknown>;
  echo: ResponsesEcho;
} {
  const parsed = responsesSchema.safeParse(body);
  if (!parsed.success) throw new InvalidRequestError(describeIssues(parsed.error.issues));
  return { chat: toChatBody(parsed.data), echo: echoOf(parsed.data) };
}

/** The chat-completions body for a checked Responses body. */
export function toChatBody(body: ResponsesBody): Record<string, unknown> {
  const messages: ChatMessage[] = [];
  if (body.instructions != null) messages.push({ role: "system", content: body.instructions });
  if (typeof body.input === "string") messages.push({ role: "user", content: body.input });
  else for (const item of body.input) addItem(messages, item);
  const chat: Record<string, unknown> = { messages };
  const copy = {
    model: body.model,
    max_completion_tokens: body.max_output_tokens,
    temperature: body.temperature,
    top_p: body.top_p,
    seed: body.seed,
    parallel_tool_calls: body.parallel_tool_calls,
    stream: body.stream,
    user: body.user,
  };
  for (const [key, value] of Object.entries(copy)) if (value != null) chat[key] = value;
  if (body.tools != null && body.tools.length > 0) {
    chat.tools = body.tools.map((tool) => ({
      type: "function",
      function: {
        name: tool.name,
        ...(tool.description == null ? {} : { description: tool.description }),
        ...(tool.parameters == null ? {} : { parameters: tool.parameters }),
      },
    }));
  }
  const choice = body.tool_choice;
  if (choice != null) {
    chat.tool_choice =
      typeof choice === "string" ? choice : { type: "function", function: { name: choice.name } };
  }
  const format = body.text?.format;
  if (format?.type === "json_schema") {
    chat.response_format = {
      type: "json_schema",
      json_schema: { name: format.name ?? "response", schema: format.schema },
    };
  } else if (format?.type === "json_object") chat.response_format = { type: "json_object" };
  return chat;
}

/** Adds one input item to the chat messages: a call joins the assistant message before it. */
function addItem(messages: ChatMessage[], item: Item): void {
  if (item.type === "function_call") {
    const call = {
      id: item.call_id,
      type: "function",
      function: { name: item.name, arguments: item.arguments },
    };
    const last = messages.at(-1);
    if (last?.role === "assistant") last.tool_calls = [...(last.tool_calls ?? []), call];
    else messages.push({ role: "assistant", content: null, tool_calls: [call] });
    return;
  }
  if (item.type === "function_call_output") {
    messages.push({ role: "tool", tool_call_id: item.call_id, content: textOf(item.output) });
    return;
  }
  messages.push({ role: item.role, content: textOf(item.content) });
}

function textOf(content: string | { text: string }[]): string {
  return typeof content === "string" ? content : content.map((part) => part.text).join("");
}

/** What the Response object repeats of its request, as OpenAI fills it in. */
function echoOf(body: ResponsesBody): ResponsesEcho {
  return {
    instructions: body.instructions ?? null,
    max_output_tokens: body.max_output_tokens ?? null,
    metadata: body.metadata ?? {},
    parallel_tool_calls: body.parallel_tool_calls ?? true,
    temperature: body.temperature ?? null,
    top_p: body.top_p ?? null,
    text: { format: body.text?.format ?? { type: "text" }, verbosity: "medium" },
    tool_choice: body.tool_choice ?? "auto",
    tools: (body.tools ?? []).map((tool) => ({
      type: "function",
      name: tool.name,
      description: tool.description ?? null,
      parameters: tool.parameters ?? null,
      strict: tool.strict ?? null,
    })),
    background: false,
    previous_response_id: null,
    reasoning: null,
    store: false,
    truncation: "disabled",
    ...(body.user === undefined ? {} : { user: body.user }),
  };
}
