import { z } from "zod";
import { InvalidRequestError } from "../errors/index.js";
import { describeIssues, type GenerationRequest } from "../protocol/index.js";
import { fromOpenAiEmbeddingsBody, openAiEmbeddingsSchema } from "./openai-embeddings.js";
import {
  fromOpenAiBody,
  type OpenAiAnswerShape,
  type OpenAiRoute,
  openAiChatSchema,
  openAiCompletionSchema,
  openAiRouteOfPath,
  openAiRoutePaths,
} from "./openai-request.js";
import { readResponsesBody } from "./responses-request.js";

/** A RunPod `openai_route` job's input, as the hosted `/openai/v1/...` path hands it over. */
export const openAiJobSchema = z
  .strictObject({
    openai_route: z.enum(
      [
        openAiRoutePaths.chat,
        openAiRoutePaths.completion,
        openAiRoutePaths.embeddings,
        openAiRoutePaths.responses,
      ],
      {
        error: `must be "${openAiRoutePaths.chat}", "${openAiRoutePaths.completion}", "${openAiRoutePaths.embeddings}" or "${openAiRoutePaths.responses}"`,
      },
    ),
    openai_input: z.record(z.string(), z.unknown(), { error: "must be an OpenAI request body" }),
  })
  .transform((job) => ({
    route: openAiRouteOfPath(job.openai_route) as OpenAiRoute,
    body: job.openai_input,
  }));

/**
 * Checks an OpenAI body for `route` and gives the pool's request for it (checked again, with the
 * pool's bounds, by the request schema) and the shape of the answer. Throws `INVALID_REQUEST`
 * naming the bad fields, with OpenAI's names.
 */
export function readOpenAiBody(
  route: OpenAiRoute,
  body: unknown,
): { request: GenerationRequest; shape: OpenAiAnswerShape } {
  if (route === "embeddings") {
    const embeddings = openAiEmbeddingsSchema.safeParse(body);
    if (!embeddings.success) throw new InvalidRequestError(describeIssues(embeddings.error.issues));
    return fromOpenAiEmbeddingsBody(embeddings.data);
  }
  if (route === "responses") {
    // The Responses API is chat completions underneath: its body is checked, then translated.
    const { chat, echo } = readResponsesBody(body);
    try {
      const { request, shape } = readOpenAiBody("chat", chat);
      return { request, shape: { ...shape, route, includeUsage: false, responses: echo } };
    } catch (error) {
      if (!(error instanceof InvalidRequestError)) throw error;
      // Its fields are the chat body's: say so, or `messages[2]` would puzzle a Responses caller.
      throw new InvalidRequestError(
        `${error.message} (in the chat-completions request this Responses request stands for)`,
      );
    }
  }
  const parsed = (route === "chat" ? openAiChatSchema : openAiCompletionSchema).safeParse(body);
  if (!parsed.success) throw new InvalidRequestError(describeIssues(parsed.error.issues));
  return fromOpenAiBody(route, parsed.data);
}
