import type { FastifyInstance } from "fastify";
import type { Registry } from "prom-client";

/**
 * Adds `GET /metrics` (Prometheus text) to a Fastify app. Authentication is the app's own (its
 * `onRequest` hook), so `/metrics` is protected exactly as the routes beside it.
 */
export function registerMetricsRoute(app: FastifyInstance, registry: Registry): void {
  app.get("/metrics", async (_request, reply) => {
    const text = await registry.metrics();
    return reply.header("content-type", registry.contentType).send(text);
  });
}
