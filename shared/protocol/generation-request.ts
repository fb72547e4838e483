import { z } from "zod";
import {
  embeddingDimensionsSchema,
  embeddingInputSchema,
  embeddingRequestIssues,
} from "./embedding-request.js";
import { gbnfProblem } from "./gbnf-check.js";
import { jsonSchemaIssues } from "./json-schema.js";
import { maxSeed } from "./seed.js";
import { maxChoices, maxTopLogprobs } from "./token-logprob.js";
import {
  toolCallSchema,
  toolChoiceSchema,
  toolDefinitionSchema,
  toolIssues,
} from "./tool-request.js";

/** Bounds that come from configuration rather than from the contract itself. */
export interface RequestLimits {
  /** Largest `max_tokens` accepted. */
  maxTokensLimit: number;
}

const finite = (rule: string) => z.number({ error: `must be a number ${rule}` });

const stopString = z
  .string({ error: "must be a string" })
  .min(1, { error: "must not be empty" })
  .max(256, { error: "must be at most 256 characters" });

/** Sampling parameters, with vLLM's names. `null` means "use the default", like an absent field. */
function samplingParamsSchema(limits: RequestLimits) {
  return z
    .strictObject({
      max_tokens: z
        .number({ error: `must be a whole number in [1, ${limits.maxTokensLimit}]` })
        .int({ error: "must be a whole number" })
        .min(1, { error: "must be at least 1" })
        .max(limits.maxTokensLimit, { error: `must be at most ${limits.maxTokensLimit}` })
        .nullish(),
      temperature: finite("in [0, 2]").min(0).max(2).nullish(),
      top_p: finite("in (0, 1]").gt(0).max(1).nullish(),
      top_k: z
        .number({ error: "must be a whole number >= -1 (-1 or 0 disable it)" })
        .int({ error: "must be a whole number" })
        .min(-1)
        .max(100_000)
        .nullish(),
      min_p: finite("in [0, 1]").min(0).max(1).nullish(),
      seed: z
        .number({ error: "must be a whole number in [0, 4294967295]" })
        .int({ error: "must be a whole number" })
        .min(0)
        .max(maxSeed)
        .nullish(),
      stop: z
        .union(
          [stopString, z.array(stopString).max(16, { error: "must hold at most 16 strings" })],
          {
            error: "must be a string or an array of strings",
          },
        )
        .nullish(),
      repeat_penalty: finite("in (0, 10]").gt(0).max(10).nullish(),
      presence_penalty: finite("in [-2, 2]").min(-2).max(2).nullish(),
      frequency_penalty: finite("in [-2, 2]").min(-2).max(2).nullish(),
      /** Choices generated for the request, each on a sequence of its own (vLLM's `n`). */
      n: z
        .number({ error: `must be a whole number in [1, ${maxChoices}]` })
        .int({ error: "must be a whole number" })
        .min(1, { error: "must be at least 1" })
        .max(maxChoices, { error: `must be at most ${maxChoices}` })
        .nullish(),
      /**
       * vLLM's `logprobs`: each generated token's log probability, with this many of the most
       * likely tokens at its place (0: the chosen token's only). `null`: none.
       */
      logprobs: z
        .number({ error: `must be a whole number in [0, ${maxTopLogprobs}]` })
        .int({ error: "must be a whole number" })
        .min(0, { error: "must be at least 0" })
        .max(maxTopLogprobs, { error: `must be at most ${maxTopLogprobs}` })
        .nullish(),
      /** Structured output: the text is held to this JSON Schema (see `json-schema.ts`). */
      json_schema: jsonSchemaField.nullish(),
      /** Structured output: the text is held to this GBNF grammar (llama.cpp's grammar format). */
      grammar: z
        .string({ error: "must be a string holding a GBNF grammar" })
        .min(1, { error: "must not be empty" })
        .max(100_000, { error: "must be at most 100000 characters" })
        .superRefine((grammar, context) => {
          // llama.cpp would print a grammar it cannot parse to stderr: checked here first.
          const problem = gbnfProblem(grammar);
          if (problem !== undefined) {
            context.addIssue({
              code: "custom",
              message: `not a GBNF grammar llama.cpp can parse: ${problem}`,
            });
          }
        })
        .nullish(),
    })
    .refine((params) => params.json_schema == null || params.grammar == null, {
      error: 'may have "json_schema" or "grammar", not both',
    });
}

const jsonSchemaField = z
  .record(z.string(), z.unknown(), { error: "must be a JSON Schema object" })
  .superRefine((schema, context) => {
    for (const issue of jsonSchemaIssues(schema)) {
      context.addIssue({ code: "custom", path: issue.path, message: issue.message });
    }
  });

const chatMessageSchema = z
  .strictObject({
    role: z.enum(["system", "user", "assistant", "tool"], {
      error: 'must be "system", "user", "assistant" or "tool"',
    }),
    /** May be null (or absent) in an assistant message with `tool_calls`. */
    content: z.string({ error: "must be a string" }).nullish(),
    /** Function calling: the calls an assistant message made (`tool-request.ts`). */
    tool_calls: z
      .array(toolCallSchema, { error: "must be an array of tool calls" })
      .min(1, { error: "must hold at least one call" })
      .max(128, { error: "must hold at most 128 calls" })
      .optional(),
    /** Function calling: the call a `tool` message answers. */
    tool_call_id: z.string({ error: "must be a string" }).optional(),
  })
  .superRefine((message, context) => {
    const problem = chatMessageProblem(message);
    if (problem !== undefined) context.addIssue({ code: "custom", ...problem });
  });

function chatMessageProblem(message: {
  role: string;
  content?: string | null | undefined;
  tool_calls?: unknown;
  tool_call_id?: string | undefined;
}): { path: string[]; message: string } | undefined {
  if (message.tool_calls !== undefined && message.role !== "assistant") {
    return { path: ["tool_calls"], message: "is only for assistant messages" };
  }
  if (message.role === "tool" && message.tool_call_id === undefined) {
    return { path: ["tool_call_id"], message: "is required in a tool message" };
  }
  if (message.role !== "tool" && message.tool_call_id !== undefined) {
    return { path: ["tool_call_id"], message: "is only for tool messages" };
  }
  if (message.content == null && message.tool_calls === undefined) {
    return { path: ["content"], message: "must be a string" };
  }
  return undefined;
}

/**
 * The decrypted request, exactly as the public contract defines it. Built once per limit:
 * building a schema costs milliseconds, checking a request with it microseconds.
 */
export function generationRequestSchema(limits: RequestLimits) {
  let schema = schemaByLimit.get(limits.maxTokensLimit);
  if (schema === undefined) {
    schema = buildRequestSchema(limits);
    schemaByLimit.set(limits.maxTokensLimit, schema);
  }
  return schema;
}

const schemaByLimit = new Map<number, ReturnType<typeof buildRequestSchema>>();

function buildRequestSchema(limits: RequestLimits) {
  return z
    .strictObject({
      model: z
        .string({ error: "must be a string" })
        .min(1, { error: "must not be empty" })
        .max(128, { error: "must be at most 128 characters" })
        .optional(),
      prompt: z
        .string({ error: "must be a string" })
        .min(1, { error: "must not be empty" })
        .optional(),
      messages: z
        .array(chatMessageSchema, { error: "must be an array of {role, content} objects" })
        .min(1, { error: "must hold at least one message" })
        .max(1024, { error: "must hold at most 1024 messages" })
        .optional(),
      /** Embeddings: the texts to embed (an embeddings job; see `embedding-request.ts`). */
      input: embeddingInputSchema.optional(),
      /** Embeddings: the vector size asked for; only the model's own size is served. */
      dimensions: embeddingDimensionsSchema.optional(),
      sampling_params: samplingParamsSchema(limits).optional(),
      /** Function calling (OpenAI's shape, see `tool-request.ts`). */
      tools: z
        .array(toolDefinitionSchema, { error: "must be an array of function tools" })
        .min(1, { error: "must hold at least one tool" })
        .max(128, { error: "must hold at most 128 tools" })
        .optional(),
      tool_choice: toolChoiceSchema.optional(),
      parallel_tool_calls: z.boolean({ error: "must be true or false" }).optional(),
      /** Ask for every stream chunk as `{"seq", "encrypted": "<Fernet token of the chunk>"}`. */
      encrypt_output: z.boolean({ error: "must be true or false" }).nullish(),
    })
    .superRefine((request, context) => {
      if (request.input !== undefined || request.dimensions !== undefined) {
        for (const issue of embeddingRequestIssues(request)) {
          context.addIssue({ code: "custom", ...issue });
        }
        return;
      }
      const given = Number(request.prompt !== undefined) + Number(request.messages !== undefined);
      if (given !== 1) {
        context.addIssue({
          code: "custom",
          path: [],
          message:
            given === 0
              ? 'needs either "prompt" or "messages"'
              : 'must have "prompt" or "messages", not both',
        });
      }
      if (request.prompt !== undefined && request.tools !== undefined) {
        context.addIssue({ code: "custom", path: ["tools"], message: 'needs "messages"' });
      }
      for (const issue of toolIssues(request)) context.addIssue({ code: "custom", ...issue });
      // Choices and logprobs run on the thread's own token loop, which knows no function calling.
      const params = request.sampling_params;
      if (request.tools !== undefined && (params?.n ?? 1) > 1) {
        context.addIssue({
          code: "custom",
          path: ["sampling_params", "n"],
          message: "must be 1 when tools are given",
        });
      }
      if (request.tools !== undefined && params?.logprobs != null) {
        context.addIssue({
          code: "custom",
          path: ["sampling_params", "logprobs"],
          message: "is not supported together with tools",
        });
      }
    });
}

export type GenerationRequest = z.infer<ReturnType<typeof buildRequestSchema>>;
export type ChatMessage = z.infer<typeof chatMessageSchema>;
