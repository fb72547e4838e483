/**
 * The image's health check (`HEALTHCHECK` in Dockerfile.gpu, `healthcheck:` in the compose file):
 * exits 0 when the part of the stack named by its argument is healthy, 1 when not, within 3 s.
 *
 * - `api` (the default): the local API answers `GET /health` with 200 on `PORT`. In RunPod mode
 *   (`RUNPOD_WEBHOOK_GET_JOB` set) there is no local API: the platform's own heartbeat
 *   (`RUNPOD_WEBHOOK_PING`) is the worker's health, so this reports healthy.
 * - `gpu-worker`: every served model has a live `ready` entry in the model registry on
 *   `REDIS_URL` (a gpu-worker has no HTTP port; the registry is what orchestrators trust).
 * - `dashboard`: the queue dashboard answers on `DASHBOARD_PORT` (401 when `API_KEY` is set counts).
 *
 * `node dist/scripts/healthcheck.js [api|gpu-worker|dashboard]`. It prints one line on failure.
 */
import { ModelRegistryReader } from "../orchestrator/registry/model-registry-reader.js";
import { configuredRedis, loadConfig } from "../shared/config/index.js";
import { messageOf } from "../shared/errors/index.js";
import { createLogger } from "../shared/log.js";
import { RedisNames } from "../shared/naming.js";
import { closeRedis, createRedis } from "../shared/redis/index.js";

const part = process.argv[2] ?? "api";
const timeoutMs = 3000;

async function httpAnswers(port: number, route: string, ok: (status: number) => boolean) {
  const response = await fetch(`http://127.0.0.1:${port}${route}`, {
    signal: AbortSignal.timeout(timeoutMs),
  });
  await response.body?.cancel();
  if (!ok(response.status)) throw new Error(`${route} answered HTTP ${response.status}`);
}

async function check(): Promise<void> {
  const config = loadConfig();
  switch (part) {
    case "api":
      if (config.mode === "runpod") return;
      return httpAnswers(config.port, "/health", (status) => status === 200);
    case "dashboard":
      return httpAnswers(config.dashboardPort, "/", (status) => status < 500);
    case "gpu-worker": {
      const log = createLogger("healthcheck", { level: "error", format: config.logFormat });
      const redis = createRedis(
        configuredRedis(config) ?? "redis://127.0.0.1:6379",
        "healthcheck",
        log,
      );
      try {
        const reader = new ModelRegistryReader({
          redis,
          names: new RedisNames(config.redisPrefix),
          log,
        });
        const models = config.served.map((model) => model.name);
        const serving = await reader.read(models);
        const notReady = models.filter((model) => serving.get(model)?.state !== "ready");
        if (notReady.length > 0) throw new Error(`not ready: ${notReady.join(", ")}`);
      } finally {
        await closeRedis(redis, 500);
      }
      return;
    }
    default:
      throw new Error(`unknown part "${part}": api, gpu-worker or dashboard`);
  }
}

const timer = setTimeout(() => {
  process.stderr.write(`unhealthy: ${part} did not answer within ${timeoutMs} ms\n`);
  process.exit(1);
}, timeoutMs + 500);
try {
  await check();
  clearTimeout(timer);
  process.exit(0);
} catch (error) {
  process.stderr.write(`unhealthy: ${messageOf(error)}\n`);
  process.exit(1);
}
