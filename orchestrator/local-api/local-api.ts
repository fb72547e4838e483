import Fastify, { type FastifyInstance } from "fastify";
import type { Logger } from "../../shared/log.js";
import type { Orchestrator } from "../orchestrator.js";
import { createApiKeyCheck } from "./api-key-check.js";
import { registerJobStateRoutes } from "./routes/job-state.js";
import { registerRunRoutes } from "./routes/run.js";
import { registerServiceRoutes } from "./routes/service.js";

export interface LocalApiOptions {
  orchestrator: Orchestrator;
  /** When set, every route but `/health` needs `Authorization: Bearer <apiKey>`. */
  apiKey: string | undefined;
  log: Logger;
}

/**
 * The local RunPod-compatible HTTP API: the routes and shapes of RunPod's hosted API, so one
 * client works against both. Errors are `{"error": "..."}` and never echo a request body.
 */
export function createLocalApi(options: LocalApiOptions): FastifyInstance {
  const { orchestrator, log } = options;
  const app = Fastify({ logger: false, bodyLimit: 20 * 1024 * 1024, return503OnClosing: true });

  if (options.apiKey !== undefined) {
    const check = createApiKeyCheck(options.apiKey);
    app.addHook("onRequest", async (request, reply) => {
      if (request.url === "/health") return;
      if (!check(request.headers.authorization)) {
        return reply
          .code(401)
          .send({ error: "missing or wrong API key (Authorization: Bearer <API_KEY>)" });
      }
    });
  }

  app.setErrorHandler(
    (error: { statusCode?: number; code?: string; name?: string }, _request, reply) => {
      const status = error.statusCode ?? 500;
      if (status >= 500) log.error("local API error", { error: error.name ?? "Error" });
      const message =
        error.code === "FST_ERR_CTP_BODY_TOO_LARGE"
          ? "the request body is too large (/run takes 10 MB, /runsync 20 MB)"
          : error.code === "FST_ERR_CTP_INVALID_MEDIA_TYPE"
            ? "the request body must be JSON (Content-Type: application/json)"
            : status < 500
              ? "the request body is not valid JSON"
              : "internal error";
      return reply.code(status).send({ error: message });
    },
  );
  app.setNotFoundHandler((_request, reply) => reply.code(404).send({ error: "no such route" }));

  registerRunRoutes(app, orchestrator);
  registerJobStateRoutes(app, orchestrator);
  registerServiceRoutes(app, orchestrator);
  return app;
}
