import { z } from "zod";
import { embeddingTexts } from "./embedding-request.js";
import type { GenerationRequest } from "./generation-request.js";
import { toolTaskOf, toolTaskSchema } from "./tool-task.js";

/**
 * A validated request with every default filled in: what the orchestrator puts on a model's queue
 * (sealed) and what a model thread runs. Field names are the library's, not the wire contract's.
 */
export const generationTaskSchema = z.strictObject({
  model: z.string(),
  input: z.discriminatedUnion("kind", [
    z.strictObject({ kind: z.literal("prompt"), prompt: z.string() }),
    z.strictObject({
      kind: z.literal("chat"),
      messages: z.array(
        z.strictObject({
          role: z.enum(["system", "user", "assistant", "tool"]),
          content: z.string(),
          /** An assistant message's function calls; `arguments` is a JSON object's text. */
          toolCalls: z
            .array(z.strictObject({ id: z.string(), name: z.string(), arguments: z.string() }))
            .optional(),
          /** The call a `tool` message answers. */
          toolCallId: z.string().optional(),
        }),
      ),
    }),
    /** An embeddings job: one vector per text, in order (`dimensions`: checked by the thread). */
    z.strictObject({
      kind: z.literal("embed"),
      texts: z.array(z.string()),
      dimensions: z.number().int().optional(),
    }),
  ]),
  /** Function calling (`tool-task.ts`): absent when the request offered no tools. */
  tools: toolTaskSchema.optional(),
  sampling: z.strictObject({
    maxTokens: z.number().int().min(1),
    temperature: z.number().min(0),
    topP: z.number(),
    topK: z.number().int(),
    minP: z.number(),
    /** Always set by admission (drawn when the request gave none); absent from older orchestrators. */
    seed: z.number().int().optional(),
    stop: z.array(z.string()),
    repeatPenalty: z.number(),
    presencePenalty: z.number(),
    frequencyPenalty: z.number(),
    /** Choices to generate, each on its own sequence (absent: 1). */
    n: z.number().int().min(2).optional(),
    /** Log probabilities of each token, with this many top alternatives (absent: none). */
    logprobs: z.number().int().min(0).optional(),
    /** Structured output: a JSON Schema (checked at admission) or a GBNF grammar text. */
    grammar: z
      .discriminatedUnion("kind", [
        z.strictObject({
          kind: z.literal("json_schema"),
          schema: z.record(z.string(), z.unknown()),
        }),
        z.strictObject({ kind: z.literal("gbnf"), text: z.string() }),
      ])
      .optional(),
  }),
});

export type GenerationTask = z.infer<typeof generationTaskSchema>;
export type TaskMessage = Extract<GenerationTask["input"], { kind: "chat" }>["messages"][number];
export type SamplingSettings = GenerationTask["sampling"];
export type GrammarSpec = NonNullable<SamplingSettings["grammar"]>;

/**
 * Defaults follow vLLM's `SamplingParams` (temperature 1, top_p 1, top_k off, no penalties), so a
 * request means the same here as on worker-vllm; `max_tokens` defaults to `MAX_TOKENS_DEFAULT`.
 */
export function toGenerationTask(
  request: GenerationRequest,
  model: string,
  defaults: {
    maxTokens: number /** Draws the seed of a request that gave none. */;
    seed: () => number;
  },
): GenerationTask {
  const params = request.sampling_params ?? {};
  const stop = params.stop ?? [];
  const tools = toolTaskOf(request);
  return {
    model,
    input:
      request.input !== undefined
        ? embedInput(request.input, request.dimensions)
        : request.messages !== undefined
          ? { kind: "chat", messages: request.messages.map(toTaskMessage) }
          : { kind: "prompt", prompt: request.prompt ?? "" },
    ...(tools === undefined ? {} : { tools }),
    sampling: {
      maxTokens: params.max_tokens ?? defaults.maxTokens,
      temperature: params.temperature ?? 1,
      topP: params.top_p ?? 1,
      topK: params.top_k ?? 0,
      minP: params.min_p ?? 0,
      seed: params.seed ?? defaults.seed(),
      stop: typeof stop === "string" ? [stop] : stop,
      repeatPenalty: params.repeat_penalty ?? 1,
      presencePenalty: params.presence_penalty ?? 0,
      frequencyPenalty: params.frequency_penalty ?? 0,
      // Only where asked: a task without them is the same as before they existed.
      ...(params.n != null && params.n > 1 ? { n: params.n } : {}),
      ...(params.logprobs != null ? { logprobs: params.logprobs } : {}),
      ...(params.json_schema != null
        ? { grammar: { kind: "json_schema" as const, schema: params.json_schema } }
        : params.grammar != null
          ? { grammar: { kind: "gbnf" as const, text: params.grammar } }
          : {}),
    },
  };
}

function embedInput(
  input: string | string[],
  dimensions: number | undefined,
): GenerationTask["input"] {
  return {
    kind: "embed",
    texts: embeddingTexts(input),
    ...(dimensions === undefined ? {} : { dimensions }),
  };
}

/** A request's message in the task's form (tool calls in library-neutral names). */
function toTaskMessage(message: NonNullable<GenerationRequest["messages"]>[number]): TaskMessage {
  return {
    role: message.role,
    content: message.content ?? "",
    ...(message.tool_calls === undefined
      ? {}
      : {
          toolCalls: message.tool_calls.map((call) => ({
            id: call.id,
            name: call.function.name,
            arguments: call.function.arguments,
          })),
        }),
    ...(message.tool_call_id === undefined ? {} : { toolCallId: message.tool_call_id }),
  };
}
