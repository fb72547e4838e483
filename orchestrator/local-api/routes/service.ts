import type { FastifyInstance } from "fastify";
import { redisAnswerMs, redisAnswerWithin } from "../../../shared/process/deadline.js";
import type { Orchestrator } from "../../orchestrator.js";

/** `/health` and `/purge-queue`. */
export function registerServiceRoutes(app: FastifyInstance, orchestrator: Orchestrator): void {
  app.get("/health", async () => {
    // A Redis that does not answer makes /health answer 503 at once, not hang.
    const [depths, serving, gpuWorkers] = await redisAnswerWithin(
      Promise.all([
        orchestrator.queues.depths(),
        orchestrator.registry.read(orchestrator.models),
        orchestrator.registry.gpuWorkers(),
      ]),
      redisAnswerMs,
    );
    const liveWorkers = new Set<string>();
    let running = 0;
    const models = [...depths].map(([name, depth]) => {
      const served = serving.get(name);
      for (const id of served?.workerIds ?? []) liveWorkers.add(id);
      running += depth.active;
      return {
        name,
        // From the registry: `ready`, `loading` or `cold` (jobs wait for its load), or
        // `unavailable` (refused: no live gpu-worker has it in its catalogue).
        state: served?.state ?? "unavailable",
        queue: { waiting: depth.waiting, active: depth.active },
        // Live gpu-workers serving the model (loading or ready), those of them that have it
        // loaded, and those that could load it.
        workers: served?.workers ?? 0,
        readyOn: served?.ready ?? 0,
        coldOn: served?.cold ?? 0,
      };
    });
    const counts = orchestrator.jobs.counts();
    return {
      jobs: {
        completed: counts.completed,
        failed: counts.failed,
        cancelled: counts.cancelled,
        timedOut: counts.timedOut,
        inProgress: counts.inProgress,
        inQueue: counts.inQueue,
        retried: 0,
      },
      // Live gpu-worker processes (by the registry) serving any of this orchestrator's models.
      workers: {
        idle: running === 0 ? liveWorkers.size : 0,
        running,
        connected: liveWorkers.size,
      },
      models,
      // Each live gpu-worker's memory budget, what its loaded models use, and its models' states.
      gpuWorkers: [...gpuWorkers].map(([id, info]) => ({ id, ...info })),
    };
  });

  // Takes this orchestrator's waiting jobs off the queues (they end CANCELLED). Jobs queued by
  // other orchestrators sharing the Redis are theirs to purge.
  app.post("/purge-queue", async () => {
    let removed = 0;
    const waiting = await redisAnswerWithin(orchestrator.queues.waitingJobIds(), redisAnswerMs);
    for (const { jobId } of waiting) {
      const record = orchestrator.jobs.known(jobId);
      if (record === undefined || record.terminal) continue;
      await orchestrator.jobs.cancel(jobId);
      removed += 1;
    }
    return { removed, status: "completed" };
  });
}
