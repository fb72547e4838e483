/**
 * The orchestrator process: decrypts and validates requests, queues them on their model's queue
 * and relays the replies. Serves the local RunPod-compatible API on HOST:PORT, or, when
 * `RUNPOD_WEBHOOK_GET_JOB` is set, runs the RunPod worker's job loop instead.
 */
import { readFileSync } from "node:fs";
import path from "node:path";

import { configuredRedis, loadConfigOrExit, resolveKeyRing } from "../shared/config/index.js";
import { explainListenError } from "../shared/errors/index.js";
import { createLogger } from "../shared/log.js";
import { servedSlots } from "../shared/models/served-models.js";
import { packageRoot } from "../shared/paths.js";
import { runEntryPoint } from "../shared/process/run-entry-point.js";
import { findRedis } from "../shared/redis/index.js";
import { ClientDirectory } from "./clients/client-directory.js";
import { closeApp } from "./http/close-app.js";
import { createLocalApi } from "./local-api/local-api.js";
import { logReady } from "./local-api/log-ready.js";
import { Orchestrator } from "./orchestrator.js";
import { RunpodWorker } from "./runpod/runpod-worker.js";

const config = loadConfigOrExit("orchestrator");
const log = createLogger("orchestrator", { level: config.logLevel, format: config.logFormat });

await runEntryPoint(log, { shutdownTimeoutMs: config.shutdownTimeoutMs }, async (closables) => {
  const keyRing = await resolveKeyRing(config, log);
  // Before Redis: a keys file to fix stops the start at once (exit 2).
  const clients = await ClientDirectory.open({
    file: config.clientKeysFile,
    poolRing: keyRing,
    log,
  });
  closables.push(clients);
  // SIGHUP re-reads the client keys (revocation without a restart); so does a change of the file.
  // Without a keys file SIGHUP keeps its default: a hangup stops the process, as before.
  if (config.clientKeysFile !== undefined)
    process.on("SIGHUP", () => void clients.reload("SIGHUP"));
  clients.watch();
  const redis = await findRedis(configuredRedis(config), log, {
    mayStart: false,
    connectTimeoutMs: config.redisConnectTimeoutMs,
  });
  const orchestrator = await Orchestrator.start({
    config,
    keyRing,
    clients,
    redisTarget: redis.target,
    log,
  });
  closables.push(orchestrator);
  if (config.runpod !== undefined) {
    const worker = new RunpodWorker({
      orchestrator,
      runpod: config.runpod,
      concurrency: config.maxConcurrency ?? servedSlots(config),
      streamWindowMs: config.streamPostWindowMs,
      faultGraceMs: config.jobLockMs,
      version: `secure-llm-pool/${packageVersion()}`,
      // The held jobs' errors are posted with stopPod: the platform replaces this worker.
      onFatal: () => process.exit(1),
      log: log.child("runpod"),
    });
    closables.push(worker);
    worker.start();
    return;
  }
  const api = createLocalApi({ orchestrator, apiKey: config.apiKey, log });
  closables.push({ close: () => closeApp(api) });
  // Closed first: new jobs are refused while running ones finish and can still be polled.
  closables.push({ close: () => orchestrator.drain() });
  const address = await api
    .listen({ host: config.host, port: config.port })
    .catch(explainListenError("PORT", config.host, config.port));
  // Only now: a port in use must not be preceded by a "ready" line.
  await logReady(log, orchestrator, {
    address,
    auth: config.apiKey === undefined ? "none" : "api-key",
  });
});

function packageVersion(): string {
  try {
    const text = readFileSync(path.join(packageRoot(), "package.json"), "utf8");
    const { version } = JSON.parse(text) as { version?: unknown };
    return typeof version === "string" ? version : "unknown";
  } catch {
    return "unknown";
  }
}
