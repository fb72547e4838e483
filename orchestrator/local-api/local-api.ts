import Fastify, { type FastifyInstance } from "fastify";
import { ErrorCode } from "../../shared/errors/index.js";
import type { Logger } from "../../shared/log.js";
import { maxJsonDepth, registerJsonBody } from "../http/json-body.js";
import type { Orchestrator } from "../orchestrator.js";
import { createApiKeyCheck } from "./api-key-check.js";
import { registerJobStateRoutes } from "./routes/job-state.js";
import { registerOpenAiRoutes } from "./routes/openai.js";
import { publicRoutes, registerProbeRoutes } from "./routes/probes.js";
import { registerRunRoutes } from "./routes/run.js";
import { registerServiceRoutes } from "./routes/service.js";

export interface LocalApiOptions {
  orchestrator: Orchestrator;
  /**
   * When set, every route but the probes (`/health`, `/ready`, `/ping`) needs
   * `Authorization: Bearer <apiKey>`; `/metrics` too.
   */
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

  // JSON is the only body type: Fastify's built-in text/plain parser would hand a plain-text body
  // to the routes (a 400 for a missing `input`), where an unsupported type must get 415.
  app.removeAllContentTypeParsers();
  registerJsonBody(app, { largeBodies: 2 });

  if (options.apiKey !== undefined) {
    const check = createApiKeyCheck(options.apiKey);
    app.addHook("onRequest", async (request, reply) => {
      if (isPublicRoute(request.routeOptions.url)) return;
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
    registerProbeRoutes(scope, orchestrator);
  };
  void app.register(routes);
  // RunPod's SDKs build `${baseUrl}/${endpointId}/run` with `baseUrl` `https://api.runpod.ai/v2`:
  // the same routes under `/v2/{any endpoint id}/` let them work unchanged against a local stack.
  void app.register(routes, { prefix: endpointPrefix });
  return app;
}

/** The prefix of the routes as RunPod's hosted API spells them; any endpoint id is taken. */
export const endpointPrefix = "/v2/:endpointId";

/** Probes need no API key, under `/v2/{endpoint id}/` too. */
function isPublicRoute(url: string | undefined): boolean {
  if (url === undefined) return false;
  return publicRoutes.has(url.startsWith(endpointPrefix) ? url.slice(endpointPrefix.length) : url);
}

/** What a caller is told of a request the server could not take; never an echo of the request. */
function clientMessage(code: string | undefined, status: number, maxBytes: number): string {
  switch (code) {
    case "INVALID_JSON":
      return "the request body is not valid JSON";
    case "JSON_TOO_DEEP":
      return `the request body nests arrays and objects deeper than ${maxJsonDepth} levels`;
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
