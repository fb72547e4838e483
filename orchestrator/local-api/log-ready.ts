import type { Logger } from "../../shared/log.js";
import { redisAnswerWithin } from "../../shared/process/deadline.js";
import type { Orchestrator } from "../orchestrator.js";

/** How long the ready line waits for the registry before it is logged without the models' states. */
const registryAnswerMs = 2000;

/**
 * Logs `orchestrator ready` once the local API listens, with what a first job would meet: the
 * models a gpu-worker serves now, those a gpu-worker is loading (their jobs wait in the queue),
 * and those no gpu-worker has announced yet (refused `MODEL_UNAVAILABLE` until one does; each
 * gpu-worker logs `model ready` when it serves one).
 */
export async function logReady(
  log: Logger,
  orchestrator: Orchestrator,
  fields: { address: string; auth: string },
): Promise<void> {
  const states = await redisAnswerWithin(orchestrator.readiness(), registryAnswerMs).then(
    ({ models }) => models,
    () => undefined,
  );
  if (states === undefined) {
    log.info("orchestrator ready", {
      ...fields,
      models: orchestrator.models.join(","),
      modelStates: "unknown (Redis did not answer)",
    });
    return;
  }
  const withState = (wanted: (state: string) => boolean) =>
    Object.entries(states)
      .filter(([, state]) => wanted(state))
      .map(([model]) => model)
      .join(",");
  log.info("orchestrator ready", {
    ...fields,
    modelsReady: withState((state) => state === "ready") || "none",
    modelsLoading: withState((state) => state === "loading") || undefined,
    waitingForGpuWorkers:
      withState((state) => state !== "ready" && state !== "loading") || undefined,
  });
}
