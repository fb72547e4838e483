import { messageOf } from "../../shared/errors/index.js";
import type { Logger } from "../../shared/log.js";
import { aborted } from "../../shared/process/aborted.js";
import { sleep } from "../../shared/process/sleep.js";
import type { ModelRegistryReader } from "../registry/model-registry-reader.js";

/** How often to look for the gpu-workers while waiting for them. */
const pollMs = 250;

/**
 * Resolves once a gpu-worker has a model loaded (`ready` in the registry) and every model is
 * `ready` or `cold` (loaded on demand), or `signal` aborts. A RunPod worker takes no job before:
 * one taken while no model is loaded yet would wait here while other workers of the endpoint could
 * run it. A job for a cold model then waits for its load like any other.
 */
export async function waitForGpuWorkers(
  registry: ModelRegistryReader,
  models: readonly string[],
  signal: AbortSignal,
  log: Logger,
): Promise<void> {
  let logged = false;
  // A read waits out a Redis reconnect: a close must not wait for it.
  const closed = aborted(signal);
  while (!signal.aborted) {
    try {
      const serving = await Promise.race([registry.read(models), closed]);
      if (serving === undefined) return;
      const states = models.map((model) => serving.get(model)?.state);
      const served = states.every((state) => state === "ready" || state === "cold");
      if (served && states.includes("ready")) return;
    } catch (error) {
      log.warn("could not count the gpu-workers", {
        error: messageOf(error),
      });
    }
    if (!logged) log.info("waiting for the gpu-worker to load a model before taking jobs");
    logged = true;
    await sleep(pollMs, { signal, onAbort: "resolve" });
  }
}
