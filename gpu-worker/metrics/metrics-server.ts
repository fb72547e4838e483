import Fastify, { type FastifyInstance } from "fastify";
import type { Registry } from "prom-client";
import { createApiKeyCheck } from "../../shared/auth/api-key-check.js";
import { registerMetricsRoute } from "../../shared/metrics/metrics-route.js";

export interface MetricsServerOptions {
  registry: Registry;
  /** When set, `/metrics` needs `Authorization: Bearer <apiKey>`. */
  apiKey: string | undefined;
}

/** The gpu-worker's only HTTP server: `GET /metrics` on `METRICS_PORT`, and nothing else. */
export function createMetricsServer(options: MetricsServerOptions): FastifyInstance {
  const app = Fastify({ logger: false, return503OnClosing: true });
  if (options.apiKey !== undefined) {
    const check = createApiKeyCheck(options.apiKey);
    app.addHook("onRequest", async (request, reply) => {
      if (!check(request.headers.authorization)) {
        return reply
          .code(401)
          .send({ error: "missing or wrong API key (Authorization: Bearer <API_KEY>)" });
      }
    });
  }
  app.setNotFoundHandler((_request, reply) => reply.code(404).send({ error: "no such route" }));
  registerMetricsRoute(app, options.registry);
  return app;
}
