/**
 * `npm start`: the whole stack in one command (in RunPod mode the orchestrator runs the job loop). Finds Redis (REDIS_URL, else 127.0.0.1:6379,
 * else a private redis-server), makes sure the local key exists, then runs the gpu-worker and the
 * orchestrator as two processes (a llama.cpp crash must not take the API down with it). Ctrl-C
 * stops both. Each part can also run alone: `npm run start:gpu-worker`, `npm run start:orchestrator`.
 *
 * Locally, a part that stops by itself after it started is restarted with backoff (see
 * `launcher/restart-backoff.ts`) while the other runs on; a part whose first start fails stops
 * the stack. On RunPod nothing is restarted: the platform replaces the whole worker.
 */
import { fileURLToPath } from "node:url";
import { configuredRedis, loadConfigOrExit, resolveKeyRing } from "../shared/config/index.js";
import { messageOf, PoolError } from "../shared/errors/index.js";
import { createLogger } from "../shared/log.js";
import { onStopSignals } from "../shared/process/stop-signals.js";
import { findRedis } from "../shared/redis/index.js";
import { SupervisedPart } from "./launcher/supervised-part.js";

const config = loadConfigOrExit("start");
const log = createLogger("start", { level: config.logLevel, format: config.logFormat });

const entry = (part: string) => fileURLToPath(new URL(`../${part}/main.js`, import.meta.url));

try {
  await resolveKeyRing(config, log);
  const redis = await findRedis(configuredRedis(config), log, {
    mayStart: true,
    connectTimeoutMs: config.redisConnectTimeoutMs,
  });
  // A Sentinel or cluster is named in the environment the parts inherit; one server by its URL.
  const env =
    typeof redis.target === "string" ? { ...process.env, REDIS_URL: redis.target } : process.env;
  const runpod = config.mode === "runpod";
  const parts = new Map<string, SupervisedPart>();
  let stopping = false;

  const stopAll = async (exitCode: number) => {
    if (stopping) return;
    stopping = true;
    // The orchestrator first, so it stops accepting while the gpu-worker finishes running jobs.
    for (const name of ["orchestrator", "gpu-worker"]) await parts.get(name)?.close();
    await redis.server?.close();
    process.exit(exitCode);
  };

  for (const name of ["gpu-worker", "orchestrator"]) {
    const part = new SupervisedPart({
      name,
      entry: entry(name),
      env,
      restart: !runpod,
      log,
      onGiveUp: ({ code, signal }, started) => {
        if (stopping) return;
        const exitCode = code === 0 ? 1 : (code ?? 1);
        if (runpod && name === "gpu-worker") {
          // The RunPod job loop notices the lost gpu-worker itself, posts the held jobs' errors
          // with stopPod (the platform replaces this worker) and exits; stop it only if it does not.
          log.error("the gpu-worker stopped: the RunPod worker will ask to be replaced", {
            code,
            signal,
          });
          setTimeout(() => void stopAll(exitCode), config.jobLockMs + 30_000).unref();
          return;
        }
        log.error(
          started
            ? "a part of the stack stopped: stopping the rest"
            : "a part of the stack could not start: stopping the rest",
          { part: name, code, signal },
        );
        void stopAll(exitCode);
      },
    });
    parts.set(name, part);
    part.start();
  }
  // The parts run on without the launcher only until they see their IPC channel close: then
  // they stop as on SIGTERM.
  const force = (signal: NodeJS.Signals) => {
    log.warn("second signal: exiting now", { signal });
    process.exit(130);
  };
  onStopSignals({
    stop(signal) {
      if (stopping) force(signal);
      log.info("stopping the local stack", { signal });
      void stopAll(0);
    },
    force,
  });
} catch (error) {
  log.error(messageOf(error), {
    code: error instanceof PoolError ? error.code : undefined,
  });
  // As the parts do: 2 for a configuration to fix (a REDIS_URL that Redis refuses, a bad key file).
  process.exit(error instanceof PoolError && error.code === "CONFIG_INVALID" ? 2 : 1);
}
