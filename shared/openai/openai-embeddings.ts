import { z } from "zod";
import type { FinalChunk, GenerationRequest } from "../protocol/index.js";
import type { OpenAiAnswerShape } from "./openai-request.js";

/**
 * OpenAI's `/v1/embeddings`: its body into the pool's embeddings request (`input`), and a finished
 * job's vectors into OpenAI's answer. Token arrays as `input` are refused (the pool takes text);
 * `dimensions` travels with the request and is refused by the model thread unless it is the
 * model's own vector size; `user` changes nothing and is accepted.
 */
export const openAiEmbeddingsSchema = z.strictObject({
  model: z.string({ error: "must be a string" }).optional(),
  input: z.union([z.string(), z.array(z.string())], {
    error: "must be a string or an array of strings (token arrays are not supported)",
  }),
  encoding_format: z.enum(["float", "base64"], { error: 'must be "float" or "base64"' }).nullish(),
  dimensions: z.number({ error: "must be a number" }).nullish(),
  user: z.string({ error: "must be a string" }).optional(),
  encrypt_output: z.boolean({ error: "must be true or false" }).nullish(),
});

export type OpenAiEmbeddingsBody = z.infer<typeof openAiEmbeddingsSchema>;

/** The pool's request for a checked `/v1/embeddings` body, and the shape of its answer. */
export function fromOpenAiEmbeddingsBody(body: OpenAiEmbeddingsBody): {
  request: GenerationRequest;
  shape: OpenAiAnswerShape;
} {
  const request: Record<string, unknown> = { input: body.input };
  if (body.model !== undefined) request.model = body.model;
  if (body.dimensions != null) request.dimensions = body.dimensions;
  if (body.encrypt_output != null) request.encrypt_output = body.encrypt_output;
  return {
    request: request as GenerationRequest,
    shape: {
      route: "embeddings",
      stream: false,
      includeUsage: false,
      encodingFormat: body.encoding_format ?? "float",
    },
  };
}

/** OpenAI's `base64` encoding of a vector: its float32 values, little-endian, in base64. */
export function base64OfVector(vector: readonly number[]): string {
  const bytes = Buffer.alloc(vector.length * 4);
  vector.forEach((value, index) => {
    bytes.writeFloatLE(value, index * 4);
  });
  return bytes.toString("base64");
}

/** OpenAI's answer to `/v1/embeddings`, from the job's final chunk. */
export function openAiEmbeddingsAnswer(
  final: FinalChunk | undefined,
  model: string,
  encodingFormat: "float" | "base64",
): object {
  const vectors = final?.embeddings ?? [];
  const promptTokens = final?.usage.prompt_tokens ?? 0;
  return {
    object: "list",
    data: vectors.map((vector, index) => ({
      object: "embedding",
      index,
      embedding: encodingFormat === "base64" ? base64OfVector(vector) : vector,
    })),
    model,
    usage: { prompt_tokens: promptTokens, total_tokens: promptTokens },
  };
}
