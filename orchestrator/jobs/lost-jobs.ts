import { JobLostError } from "../../shared/errors/index.js";
import type { RedisNames } from "../../shared/naming.js";
import { getEach, type RedisClient } from "../../shared/redis/index.js";
import type { ModelQueues } from "./model-queues.js";
import type { TrackedJob } from "./tracked-job.js";

/**
 * After Redis lost writes (it restarted empty or from an older snapshot, was flushed, or a
 * primary failed over to a replica that lacked its last writes): fails `JOB_LOST` the tracked
 * jobs whose queue entry it lost (waiting ones, and running ones, whose gpu-worker lost its lock
 * on them and stops) and the running ones whose owner key it lost (their gpu-worker's replies are
 * refused from now on), rather than leave them to their timeout. Returns how many it failed.
 */
export async function failLostJobs(
  jobs: Iterable<TrackedJob>,
  { redis, names, queues }: { redis: RedisClient; names: RedisNames; queues: ModelQueues },
): Promise<number> {
  const queued = [...jobs]
    .filter((job) => job.phase !== "queuing" && !job.record.terminal)
    .map((job) => ({ job, model: job.model, queueJobId: job.queueJobId }));
  const running = queued.filter(({ job }) => job.phase === "running");
  const [missing, owners] = await Promise.all([
    queues.missing(queued),
    getEach(
      redis,
      running.map(({ job }) => names.ownerKey(job.id)),
    ),
  ]);
  running.forEach(({ queueJobId }, index) => {
    if (owners[index] === null) missing.add(queueJobId);
  });
  let failed = 0;
  for (const { job, queueJobId } of queued) {
    if (missing.has(queueJobId) && !job.record.terminal) {
      job.fail(new JobLostError().toInfo());
      failed += 1;
    }
  }
  return failed;
}
