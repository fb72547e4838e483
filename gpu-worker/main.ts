/**
 * The gpu-worker process: loads the models of MODELS (or the demo model) into worker threads and
 * serves their queues. Run one per GPU machine; all share one Redis.
 */
import { loadConfigOrExit, resolveKeyRing } from "../shared/config/index.js";
import { createLogger } from "../shared/log.js";
import { runEntryPoint } from "../shared/process/run-entry-point.js";
import { findRedis } from "../shared/redis/index.js";
import { GpuWorker } from "./gpu-worker.js";

const config = loadConfigOrExit("gpu-worker");
const log = createLogger("gpu-worker", { level: config.logLevel, format: config.logFormat });

await runEntryPoint(log, { shutdownTimeoutMs: config.shutdownTimeoutMs }, async (closables) => {
  const keyRing = await resolveKeyRing(config, log);
  const redis = await findRedis(config.redisUrl, log, {
    mayStart: false,
    connectTimeoutMs: config.redisConnectTimeoutMs,
  });
  const worker = await GpuWorker.start({ config, keyRing, redisUrl: redis.url, log });
  closables.push(worker);
});
