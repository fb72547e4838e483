import type { FastifyInstance } from "fastify";
import { OpenAiPlaintextDisabledError } from "../../../shared/errors/index.js";
import {
  openAiError,
  openAiModelList,
  openAiRoutePaths,
  sendJson,
  sendOpenAiAnswer,
} from "../../../shared/openai/index.js";
import { recordChunks, recordFailureOf } from "../../openai/record-chunks.js";
import type { Orchestrator } from "../../orchestrator.js";

/**
 * RunPod's hosted OpenAI path, `/openai/v1/...`, on the local API: plaintext OpenAI requests,
 * taken only with `ALLOW_PLAINTEXT_OPENAI=true` (else a 403 that points to the encrypting proxy).
 * Each request is a job like a RunPod `openai_route` job: the same admission, the same answer.
 */
export function registerOpenAiRoutes(app: FastifyInstance, orchestrator: Orchestrator): void {
  const bodyLimit = orchestrator.maxRequestBytes;

  app.get("/openai/v1/models", async (_request, reply) => {
    if (!orchestrator.allowPlaintextOpenai) {
      const refusal = new OpenAiPlaintextDisabledError();
      const { status, body } = openAiError(refusal.code, refusal.message);
      return reply.code(status).send(body);
    }
    return openAiModelList(orchestrator.models);
  });

  for (const route of [
    openAiRoutePaths.chat,
    openAiRoutePaths.completion,
    openAiRoutePaths.embeddings,
    openAiRoutePaths.responses,
  ]) {
    app.post(`/openai${route}`, { bodyLimit }, async (request, reply) => {
      const record = await orchestrator.jobs.submit({
        openai_route: route,
        openai_input: request.body ?? {},
      });
      // Answered on the raw response: server-sent events, written as the chunks come.
      reply.hijack();
      const response = reply.raw;
      response.once("close", () => {
        if (!response.writableFinished && !record.terminal)
          void orchestrator.jobs.cancel(record.id);
      });
      const shape = record.openai ?? { route: "chat", stream: false, includeUsage: false };
      await sendOpenAiAnswer(response, {
        shape,
        jobId: record.id,
        model: record.model ?? "",
        chunks: recordChunks(record),
        failureOf: recordFailureOf,
      });
      if (!response.writableEnded && !response.destroyed) {
        sendJson(response, 500, openAiError("INTERNAL", "internal error").body);
      }
    });
  }
}
