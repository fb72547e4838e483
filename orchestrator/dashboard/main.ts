/**
 * The admin queue dashboard process: a read-only bull-board view of the model queues on
 * HOST:DASHBOARD_PORT. Protected by API_KEY when it is set. It shows the models Redis knows under
 * REDIS_PREFIX (and MODELS' names, when set): it needs no MODELS of its own.
 */

import { configuredRedis, loadConfigOrExit } from "../../shared/config/index.js";
import { explainListenError } from "../../shared/errors/index.js";
import { createLogger } from "../../shared/log.js";
import { RedisNames } from "../../shared/naming.js";
import { runEntryPoint } from "../../shared/process/run-entry-point.js";
import { closeRedis, createRedis, findRedis } from "../../shared/redis/index.js";
import { createQueueDashboard } from "./queue-dashboard.js";

const config = loadConfigOrExit("dashboard");
const log = createLogger("dashboard", { level: config.logLevel, format: config.logFormat });

await runEntryPoint(log, { shutdownTimeoutMs: config.shutdownTimeoutMs }, async (closables) => {
  const found = await findRedis(configuredRedis(config), log, {
    mayStart: false,
    connectTimeoutMs: config.redisConnectTimeoutMs,
  });
  const redis = createRedis(found.target, "dashboard", log);
  closables.push({ close: () => closeRedis(redis) });
  const dashboard = createQueueDashboard({
    models: config.models.map((model) => model.name),
    connection: redis,
    names: new RedisNames(config.redisPrefix),
    apiKey: config.apiKey,
    log,
  });
  closables.push(dashboard);
  const address = await dashboard.app
    .listen({ host: config.host, port: config.dashboardPort })
    .catch(explainListenError("DASHBOARD_PORT", config.host, config.dashboardPort));
  const models = await dashboard.findModels();
  log.info("queue dashboard listening", {
    address,
    models: models.join(","),
    auth: config.apiKey === undefined ? "none" : "api-key",
  });
  if (models.length === 0) {
    log.warn(
      "no model in Redis under REDIS_PREFIX yet (no gpu-worker registered one, no queue exists): is REDIS_PREFIX the pool's? Models that appear later are shown",
      { redisPrefix: config.redisPrefix },
    );
  }
});
