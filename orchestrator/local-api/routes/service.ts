import type { FastifyInstance } from "fastify";
import type { Orchestrator } from "../../orchestrator.js";

/** `/health` and `/purge-queue`. */
export function registerServiceRoutes(app: FastifyInstance, orchestrator: Orchestrator): void {
  app.get("/health", async () => {
    const { table } = orchestrator.jobs;
    const [depths, serving] = await Promise.all([
      orchestrator.queues.depths(),
      orchestrator.registry.read(orchestrator.models),
    ]);
    const liveWorkers = new Set<string>();
    let running = 0;
    const models = [...depths].map(([name, depth]) => {
      const served = serving.get(name);
      for (const id of served?.workerIds ?? []) liveWorkers.add(id);
      running += depth.active;
      return {
        name,
        // From the registry: `ready`, `loading` (jobs wait for it) or `unavailable` (refused).
        state: served?.state ?? "unavailable",
        queue: { waiting: depth.waiting, active: depth.active },
        // Live gpu-workers serving the model (loading or ready).
        workers: served?.workers ?? 0,
      };
    });
    const unfinished = table.unfinished();
    return {
      jobs: {
        completed: table.counts.completed,
        failed: table.counts.failed,
        cancelled: table.counts.cancelled,
        timedOut: table.counts.timedOut,
        inProgress: unfinished.inProgress,
        inQueue: unfinished.inQueue,
        retried: 0,
      },
      // Live gpu-worker processes (by the registry) serving any of this orchestrator's models.
      workers: {
        idle: running === 0 ? liveWorkers.size : 0,
        running,
        connected: liveWorkers.size,
      },
      models,
    };
  });

  // Takes this orchestrator's waiting jobs off the queues (they end CANCELLED). Jobs queued by
  // other orchestrators sharing the Redis are theirs to purge.
  app.post("/purge-queue", async () => {
    let removed = 0;
    for (const { jobId } of await orchestrator.queues.waitingJobIds()) {
      const record = orchestrator.jobs.table.get(jobId);
      if (record === undefined || record.terminal) continue;
      await orchestrator.jobs.cancel(jobId);
      removed += 1;
    }
    return { removed, status: "completed" };
  });
}
