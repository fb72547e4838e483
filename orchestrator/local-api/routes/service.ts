import type { FastifyInstance } from "fastify";
import type { Orchestrator } from "../../orchestrator.js";

/** `/health` and `/purge-queue`. */
export function registerServiceRoutes(app: FastifyInstance, orchestrator: Orchestrator): void {
  app.get("/health", async () => {
    const { table } = orchestrator.jobs;
    const depths = await orchestrator.queues.depths();
    let workers = 0;
    let running = 0;
    const models = [...depths].map(([name, depth]) => {
      workers += depth.workers;
      running += depth.active;
      return {
        name,
        queue: { waiting: depth.waiting, active: depth.active },
        workers: depth.workers,
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
      // BullMQ workers connected to the model queues (one per model per gpu-worker process).
      workers: { idle: running === 0 ? workers : 0, running, connected: workers },
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
