import type { FastifyInstance } from "fastify";
import { registerMetricsRoute } from "../../../shared/metrics/metrics-route.js";
import { redisAnswerMs, redisAnswerWithin } from "../../../shared/process/deadline.js";
import type { Orchestrator } from "../../orchestrator.js";

/** Routes that need no API key: probes say whether the service is up, nothing about its jobs. */
export const publicRoutes: ReadonlySet<string> = new Set(["/health", "/ready", "/ping"]);

/**
 * `/ready` (200 once every served model is `ready` or `cold` on a gpu-worker, else 503), `/ping` (RunPod's
 * load-balancer probe: 200 ready, 204 still initialising) and `/metrics` (Prometheus text).
 */
export function registerProbeRoutes(app: FastifyInstance, orchestrator: Orchestrator): void {
  const readiness = () => redisAnswerWithin(orchestrator.readiness(), redisAnswerMs);

  app.get("/ready", async (_request, reply) => {
    const { ready, models } = await readiness();
    return reply.code(ready ? 200 : 503).send({ ready, models });
  });

  app.get("/ping", async (_request, reply) => {
    const { ready } = await readiness();
    if (!ready) return reply.code(204).send();
    return reply.code(200).send({ status: "healthy" });
  });

  registerMetricsRoute(app, orchestrator.metrics.registry);
}
