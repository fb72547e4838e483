/**
 * The gpu-worker process: loads the models of MODELS (or the demo model) into worker threads and
 * serves their queues. Run one per GPU machine; all share one Redis. With METRICS_PORT set it
 * serves Prometheus `/metrics` on HOST:METRICS_PORT.
 */
import { configuredRedis, loadConfigOrExit, resolveKeyRing } from "../shared/config/index.js";
import { explainListenError } from "../shared/errors/index.js";
import { createLogger } from "../shared/log.js";
import { runEntryPoint } from "../shared/process/run-entry-point.js";
import { findRedis } from "../shared/redis/index.js";
import { GpuWorker } from "./gpu-worker.js";
import { createMetricsServer } from "./metrics/metrics-server.js";
import { WorkerMetrics } from "./metrics/worker-metrics.js";

const config = loadConfigOrExit("gpu-worker");
const log = createLogger("gpu-worker", { level: config.logLevel, format: config.logFormat });

await runEntryPoint(log, { shutdownTimeoutMs: config.shutdownTimeoutMs }, async (closables) => {
  const keyRing = await resolveKeyRing(config, log);
  const redis = await findRedis(configuredRedis(config), log, {
    mayStart: false,
    connectTimeoutMs: config.redisConnectTimeoutMs,
  });
  let metrics: WorkerMetrics | undefined;
  if (config.metricsPort !== undefined) {
    metrics = new WorkerMetrics();
    const server = createMetricsServer({ registry: metrics.registry, apiKey: config.apiKey });
    // Up before the models load, so a scrape during loading already answers.
    const address = await server
      .listen({ host: config.host, port: config.metricsPort })
      .catch(explainListenError("METRICS_PORT", config.host, config.metricsPort));
    closables.push({ close: () => server.close() });
    log.info("metrics listening", { address });
  }
  const worker = await GpuWorker.start({
    config,
    keyRing,
    redisTarget: redis.target,
    log,
    metrics,
  });
  metrics?.observe(worker);
  closables.push(worker);
});
