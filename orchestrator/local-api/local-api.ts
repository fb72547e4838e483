import Fastify, { type FastifyInstance } from "fastify";
import { ErrorCode } from "../../shared/errors/index.js";
import type { Logger } from "../../shared/log.js";
import type { Orchestrator } from "../orchestrator.js";
import { createApiKeyCheck } from "./api-key-check.js";
import { registerJobStateRoutes } from "./routes/job-state.js";
import { registerOpenAiRoutes } from "./routes/openai.js";
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
  const app = Fastify({
    logger: false,
    bodyLimit: orchestrator.maxRequestBytes,
    return503OnClosing: true,
  });

  // An empty body with a JSON content type is no body (clients send the header on `/cancel` too).
  app.removeContentTypeParser("application/json");
  app.addContentTypeParser("application/json", { parseAs: "string" }, (_request, body, done) => {
    if (typeof body !== "string" || body.trim() === "") return done(null, undefined);
    try {
      done(null, JSON.parse(body));
    } catch {
      done(Object.assign(new Error("invalid JSON"), { statusCode: 400, code: "INVALID_JSON" }));
    }
  });

  if (options.apiKey !== undefined) {
    const check = createApiKeyCheck(options.apiKey);
    app.addHook("onRequest", async (request, reply) => {
      if (isHealthRoute(request.routeOptions.url)) return;
      if (!check(request.headers.authorization)) {
        return reply
          .code(401)
          .send({ error: "missing or wrong API key (Authorization: Bearer <API_KEY>)" });
      }
    });
  }

  app.setErrorHandler(
    (error: { statusCode?: number; code?: string; name?: string }, _request, reply) => {
      const status = error.statusCode ?? (error.code === ErrorCode.REDIS_UNAVAILABLE ? 503 : 500);
      if (status >= 500) log.error("local API error", { error: error.name ?? "Error" });
      return reply
        .code(status)
        .send({ error: clientMessage(error.code, status, orchestrator.maxRequestBytes) });
    },
  );
  app.setNotFoundHandler((_request, reply) => reply.code(404).send({ error: "no such route" }));

  const routes = async (scope: FastifyInstance) => {
    registerRunRoutes(scope, orchestrator);
    registerJobStateRoutes(scope, orchestrator);
    registerServiceRoutes(scope, orchestrator);
    registerOpenAiRoutes(scope, orchestrator);
  };
  void app.register(routes);
  // RunPod's SDKs build `${baseUrl}/${endpointId}/run` with `baseUrl` `https://api.runpod.ai/v2`:
  // the same routes under `/v2/{any endpoint id}/` let them work unchanged against a local stack.
  void app.register(routes, { prefix: endpointPrefix });
  return app;
}

/** The prefix of the routes as RunPod's hosted API spells them; any endpoint id is taken. */
export const endpointPrefix = "/v2/:endpointId";

function isHealthRoute(url: string | undefined): boolean {
  return url === "/health" || url === `${endpointPrefix}/health`;
}

/** What a caller is told of a request the server could not take; never an echo of the request. */
function clientMessage(code: string | undefined, status: number, maxBytes: number): string {
  switch (code) {
    case "INVALID_JSON":
      return "the request body is not valid JSON";
    case "FST_ERR_CTP_BODY_TOO_LARGE":
      return `the request body is too large: this endpoint takes at most ${maxBytes} bytes (MAX_REQUEST_BYTES)`;
    case "FST_ERR_CTP_INVALID_MEDIA_TYPE":
      return "the request body must be JSON (Content-Type: application/json)";
    case ErrorCode.REDIS_UNAVAILABLE:
      return "Redis does not answer; try again shortly";
    default:
      return status < 500 ? `the request could not be taken (HTTP ${status})` : "internal error";
  }
}
