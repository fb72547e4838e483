import { z } from "zod";
import { type GenerationRequest, maxChoices, maxTopLogprobs } from "../protocol/index.js";
import {
  messageToolFieldsOf,
  openAiMessageToolFields,
  openAiToolFields,
  toolFieldsOf,
} from "./openai-tools.js";
import { responsesEchoSchema } from "./responses-request.js";

/**
 * OpenAI request bodies (`/v1/chat/completions`, `/v1/completions`) and their translation into
 * this pool's request. The fields are the ones a local model can honour; a field that would change
 * the answer and cannot be honoured (`logit_bias`, legacy `functions`, ...) is refused by name instead of
 * being ignored. Fields that change nothing here (`user`, `store`, `metadata`, ...) are accepted.
 */

/** Which OpenAI route a body is for (`responses`: the Responses API, translated onto chat). */
export type OpenAiRoute = "chat" | "completion" | "embeddings" | "responses";

/** The routes as RunPod's `openai_route` and the OpenAI API spell them. */
export const openAiRoutePaths = {
  chat: "/v1/chat/completions",
  completion: "/v1/completions",
  embeddings: "/v1/embeddings",
  responses: "/v1/responses",
  models: "/v1/models",
} as const;

const routeByPath: Readonly<Record<string, OpenAiRoute>> = {
  [openAiRoutePaths.chat]: "chat",
  [openAiRoutePaths.completion]: "completion",
  [openAiRoutePaths.embeddings]: "embeddings",
  [openAiRoutePaths.responses]: "responses",
};

/** The route a path (`/v1/...`) names; `undefined` for `/v1/models` and any other path. */
export function openAiRouteOfPath(path: string): OpenAiRoute | undefined {
  return Object.hasOwn(routeByPath, path) ? routeByPath[path] : undefined;
}

/** llama.cpp's `json.gbnf`: any JSON object. What `response_format: {"type": "json_object"}` means. */
export const jsonObjectGrammar = String.raw`root ::= object
value ::= object | array | string | number | ("true" | "false" | "null") ws
object ::= "{" ws ( string ":" ws value ("," ws string ":" ws value)* )? "}" ws
array ::= "[" ws ( value ("," ws value)* )? "]" ws
string ::= "\"" ( [^"\\\x7F\x00-\x1F] | "\\" (["\\bfnrt] | "u" [0-9a-fA-F]{4}) )* "\"" ws
number ::= ("-"? ([0-9] | [1-9] [0-9]{0,15})) ("." [0-9]+)? ([eE] [-+]? [0-9] [1-9]{0,15})? ws
ws ::= | " " | "\n" [ \t]{0,20}`;

const textPart = z.looseObject({
  type: z.literal("text", { error: 'only "text" parts are supported' }),
  text: z.string({ error: "must be a string" }),
});

const content = z.union(
  [z.string(), z.array(textPart, { error: "must be a string or a list of text parts" })],
  { error: "must be a string or a list of text parts" },
);

const chatMessage = z.looseObject({
  role: z.enum(["system", "developer", "user", "assistant", "tool"], {
    error: 'must be "system", "developer", "user", "assistant" or "tool"',
  }),
  content: content.nullish(),
  name: z.string().optional(),
  ...openAiMessageToolFields,
});

const unsupported = (what: string) => z.undefined({ error: `${what} is not supported` }).optional();
const onlyDefault = <T extends z.ZodType>(schema: T, rule: string) =>
  schema
    .optional()
    .nullable()
    .refine((value) => value == null || value === false || value === 1, {
      error: rule,
    });

const responseFormat = z.discriminatedUnion(
  "type",
  [
    z.looseObject({ type: z.literal("text") }),
    z.looseObject({ type: z.literal("json_object") }),
    z.looseObject({
      type: z.literal("json_schema"),
      json_schema: z.looseObject({
        name: z.string().optional(),
        schema: z.record(z.string(), z.unknown(), { error: "must be a JSON Schema object" }),
      }),
    }),
  ],
  { error: 'must be {"type": "text" | "json_object" | "json_schema", ...}' },
);

/** What both routes share. Values are checked again, with the pool's own bounds, once mapped. */
const common = {
  model: z.string({ error: "must be a string" }).optional(),
  max_tokens: z.number({ error: "must be a number" }).nullish(),
  max_completion_tokens: z.number({ error: "must be a number" }).nullish(),
  temperature: z.number({ error: "must be a number" }).nullish(),
  top_p: z.number({ error: "must be a number" }).nullish(),
  top_k: z.number({ error: "must be a number" }).nullish(),
  min_p: z.number({ error: "must be a number" }).nullish(),
  repeat_penalty: z.number({ error: "must be a number" }).nullish(),
  presence_penalty: z.number({ error: "must be a number" }).nullish(),
  frequency_penalty: z.number({ error: "must be a number" }).nullish(),
  seed: z.number({ error: "must be a number" }).nullish(),
  stop: z
    .union([z.string(), z.array(z.string())], { error: "must be a string or strings" })
    .nullish(),
  response_format: responseFormat.nullish(),
  stream: z.boolean({ error: "must be true or false" }).nullish(),
  stream_options: z
    .looseObject({ include_usage: z.boolean({ error: "must be true or false" }).nullish() })
    .nullish(),
  n: z
    .number({ error: `must be a whole number in [1, ${maxChoices}]` })
    .int({ error: "must be a whole number" })
    .min(1, { error: "must be at least 1" })
    .max(maxChoices, { error: `must be at most ${maxChoices}` })
    .nullish(),
  logit_bias: unsupported("logit_bias"),
  functions: unsupported("functions"),
  function_call: unsupported("function_call"),
  user: z.string().optional(),
  store: z.boolean().nullish(),
  metadata: z.unknown().optional(),
  service_tier: z.unknown().optional(),
  encrypt_output: z.boolean({ error: "must be true or false" }).nullish(),
};

/** `logprobs` of the legacy completions API, `top_logprobs` of chat: top alternatives per token. */
const topCount = z
  .number({ error: `must be a whole number in [0, ${maxTopLogprobs}]` })
  .int({ error: "must be a whole number" })
  .min(0, { error: "must be at least 0" })
  .max(maxTopLogprobs, { error: `must be at most ${maxTopLogprobs}` });

export const openAiChatSchema = z
  .strictObject({
    ...common,
    ...openAiToolFields,
    messages: z.array(chatMessage, { error: "must be a list of messages" }),
    logprobs: z.boolean({ error: "must be true or false" }).nullish(),
    top_logprobs: topCount.nullish(),
  })
  .superRefine((body, context) => {
    if (body.top_logprobs != null && body.logprobs !== true) {
      context.addIssue({
        code: "custom",
        path: ["top_logprobs"],
        message: "needs logprobs: true",
      });
    }
  });

export const openAiCompletionSchema = z.strictObject({
  ...common,
  prompt: z.union([z.string(), z.array(z.string()).length(1, { error: "must hold one prompt" })], {
    error: "must be a string (or a list of one string)",
  }),
  tools: z
    .undefined({ error: "is not supported on /v1/completions: use /v1/chat/completions" })
    .optional(),
  tool_choice: z.undefined({ error: "is not supported on /v1/completions" }).optional(),
  parallel_tool_calls: z.unknown().optional(),
  echo: onlyDefault(z.boolean(), "is not supported"),
  suffix: z.null({ error: "is not supported" }).optional(),
  best_of: onlyDefault(z.number(), "must be 1"),
  logprobs: topCount.nullish(),
  top_logprobs: unsupported("top_logprobs (of chat; completions take logprobs: 0-20)"),
});

export type OpenAiChatBody = z.infer<typeof openAiChatSchema>;
export type OpenAiCompletionBody = z.infer<typeof openAiCompletionSchema>;
export type OpenAiBody = OpenAiChatBody | OpenAiCompletionBody;

/** How the answer to an OpenAI request is to be shaped (kept with the job's record). */
export const openAiAnswerShapeSchema = z.object({
  route: z.enum(["chat", "completion", "embeddings", "responses"]),
  stream: z.boolean(),
  /** `stream_options.include_usage`: a last chunk with empty `choices` and the usage. */
  includeUsage: z.boolean(),
  /** `/v1/embeddings`' `encoding_format` (default `float`). */
  encodingFormat: z.enum(["float", "base64"]).optional(),
  /** A Responses API answer: the request fields its Response object repeats. */
  responses: responsesEchoSchema.optional(),
  /** The request asked for logprobs: each choice carries its tokens' (absent: false). */
  logprobs: z.boolean().optional(),
});

export type OpenAiAnswerShape = z.infer<typeof openAiAnswerShapeSchema>;

/** Fields only an OpenAI body has at its top level: a decrypted request with one is read as such. */
const openAiOnlyFields = [
  "max_tokens",
  "max_completion_tokens",
  "temperature",
  "top_p",
  "top_k",
  "min_p",
  "repeat_penalty",
  "presence_penalty",
  "frequency_penalty",
  "seed",
  "stop",
  "response_format",
  "stream",
  "stream_options",
  "n",
  "logprobs",
  "top_logprobs",
  "user",
  "encoding_format",
] as const;

/** Whether a decrypted request is OpenAI-shaped (sampling fields at the top, no `sampling_params`). */
export function looksLikeOpenAiBody(value: unknown): value is Record<string, unknown> {
  if (typeof value !== "object" || value === null || Array.isArray(value)) return false;
  if ("sampling_params" in value) return false;
  return openAiOnlyFields.some((field) => field in value);
}

/** The route of an OpenAI body read from its fields (for bodies that arrive without a path). */
export function openAiRouteOf(body: Record<string, unknown>): OpenAiRoute {
  if ("input" in body) return "embeddings";
  return "messages" in body ? "chat" : "completion";
}

/** The pool's request for a checked OpenAI body, and the shape of the answer it asked for. */
export function fromOpenAiBody(
  route: Exclude<OpenAiRoute, "embeddings">,
  body: OpenAiBody,
): { request: GenerationRequest; shape: OpenAiAnswerShape } {
  const sampling: Record<string, unknown> = {};
  const maxTokens = body.max_completion_tokens ?? body.max_tokens;
  const copy = {
    max_tokens: maxTokens,
    temperature: body.temperature,
    top_p: body.top_p,
    top_k: body.top_k,
    min_p: body.min_p,
    repeat_penalty: body.repeat_penalty,
    presence_penalty: body.presence_penalty,
    frequency_penalty: body.frequency_penalty,
    seed: body.seed,
    stop: Array.isArray(body.stop) && body.stop.length === 0 ? undefined : body.stop,
    n: body.n != null && body.n > 1 ? body.n : undefined,
    logprobs: logprobsOf(body),
  };
  for (const [key, value] of Object.entries(copy)) if (value != null) sampling[key] = value;
  const format = body.response_format;
  if (format?.type === "json_schema") sampling.json_schema = format.json_schema.schema;
  if (format?.type === "json_object") sampling.grammar = jsonObjectGrammar;
  const request: Record<string, unknown> = {};
  if (body.model !== undefined) request.model = body.model;
  if ("messages" in body) {
    request.messages = body.messages.map((message) => ({
      role: message.role === "developer" ? "system" : message.role,
      content: textOf(message.content),
      ...messageToolFieldsOf(message),
    }));
    Object.assign(request, toolFieldsOf(body));
  } else {
    request.prompt = Array.isArray(body.prompt) ? body.prompt[0] : body.prompt;
  }
  if (Object.keys(sampling).length > 0) request.sampling_params = sampling;
  if (body.encrypt_output != null) request.encrypt_output = body.encrypt_output;
  return {
    request: request as GenerationRequest,
    shape: {
      route,
      stream: body.stream === true,
      includeUsage: body.stream === true && body.stream_options?.include_usage === true,
      ...(logprobsOf(body) === undefined ? {} : { logprobs: true }),
    },
  };
}

/** vLLM's `logprobs` (top alternatives per token) for chat's `logprobs` + `top_logprobs`, or a completion's `logprobs`. */
function logprobsOf(body: OpenAiBody): number | undefined {
  if ("messages" in body) return body.logprobs === true ? (body.top_logprobs ?? 0) : undefined;
  return body.logprobs ?? undefined;
}

function textOf(value: string | { text: string }[] | null | undefined): string {
  if (value == null) return "";
  return typeof value === "string" ? value : value.map((part) => part.text).join("");
}
