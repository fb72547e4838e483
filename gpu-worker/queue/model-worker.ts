import { Worker } from "bullmq";
import { messageOf } from "../../shared/errors/index.js";
import type { Logger } from "../../shared/log.js";
import type { RedisNames } from "../../shared/naming.js";
import { redisCloseGraceMs, settlesWithin } from "../../shared/process/deadline.js";
import type { RedisClient } from "../../shared/redis/index.js";
import { lockTokenPrefix } from "../../shared/registry/job-owner.js";
import type { ModelPool } from "../pool/model-pool.js";
import { createJobProcessor, type JobProcessorOptions } from "./job-processor.js";

export interface ModelWorkerOptions extends JobProcessorOptions {
  connection: RedisClient;
  names: RedisNames;
  /** BullMQ's lock duration, and the period of the check for jobs whose lock lapsed. */
  lockMs: number;
  /**
   * This gpu-worker's registry id: the lock token of each job it takes names it (see
   * `lockHolder` in `shared/registry/job-owner.ts`), so the orchestrator finds a job taken by a
   * gpu-worker that died before it claimed it within `REGISTRY_TTL_MS`, not `JOB_LOCK_MS`.
   */
  workerId: string;
}

/**
 * The BullMQ Worker of one model's queue. Its concurrency is exactly what the model's pool runs at
 * once (threads × sequences), so a job is only taken when a sequence is free for it. A job whose
 * gpu-worker vanished is failed rather than run again (`maxStalledCount: 0`): its caller may
 * already hold part of its text.
 */
export function createModelWorker(options: ModelWorkerOptions): Worker {
  const { pool, names, connection, log } = options;
  const worker = new Worker(names.modelQueue(pool.name), createJobProcessor(options), {
    connection,
    prefix: names.bullPrefix,
    concurrency: pool.capacity,
    maxStalledCount: 0,
    lockDuration: options.lockMs,
    stalledInterval: options.lockMs,
    autorun: false,
  });
  // BullMQ makes each lock token `<worker id>:<n>`: the id set before it runs names this gpu-worker.
  (worker as { id: string }).id = lockTokenPrefix(options.workerId);
  worker.run().catch((error: unknown) => {
    log.error("queue worker stopped", { model: pool.name, error: messageOf(error) });
  });
  // A job with `n` choices takes `n` sequences: the worker takes that many fewer jobs meanwhile.
  pool.onExtraSequences((extra) => {
    worker.concurrency = Math.max(1, pool.capacity - extra);
  });
  worker.on("error", (error: Error) => {
    log.error("queue worker error", { model: pool.name, error: error.message });
  });
  // A job whose lock lapsed (this process was paused, or lost Redis) may already be failed or
  // running elsewhere: its processor stops and writes nothing more (see `job-processor.ts`).
  worker.on("lockRenewalFailed", (jobIds: string[]) => {
    for (const jobId of jobIds) {
      log.warn("job lock lost: stopping the job", { model: pool.name, queueJobId: jobId });
      worker.cancelJob(jobId, "lock lost");
    }
  });
  return worker;
}

export interface CloseModelWorkerOptions {
  /** Aborts every running job (their threads stop generating within milliseconds). */
  abortAll: () => void;
  /** How long running jobs may go on before they are aborted (`SHUTDOWN_TIMEOUT_MS`). */
  drainMs: number;
  /** How long Redis then gets for the jobs' last writes and BullMQ's own close. */
  redisGraceMs?: number;
  /** The pool's threads wait for another model (see `ModelPool.close`). */
  recycle?: boolean;
  log: Logger;
}

/**
 * Closes one model's worker and pool: stops taking jobs, lets the running ones finish for up to
 * `drainMs`, then aborts them; waits for the threads to end their generations and stops them.
 *
 * BullMQ's `close()` waits for each job's processor and for its own Redis writes (the job's move
 * to completed or failed, the end of its blocking connection) with no timeout; with Redis gone
 * those never end. So only the generations are awaited without a bound (they need no Redis, and a
 * thread must not be terminated mid-generation); the rest gets `redisGraceMs`, then is given up
 * on: a job whose end could not be recorded is failed when its lock lapses (another gpu-worker's
 * check) or by its orchestrator's job timeout.
 */
export async function closeModelWorker(
  worker: Worker,
  pool: ModelPool,
  options: CloseModelWorkerOptions,
): Promise<void> {
  const { abortAll, drainMs, redisGraceMs = redisCloseGraceMs, log } = options;
  const closing = worker.close();
  if (!(await settlesWithin(closing, drainMs))) abortAll();
  await pool.close({ recycle: options.recycle ?? false });
  if (!(await settlesWithin(closing, redisGraceMs))) {
    log.warn("the queue worker did not close: Redis did not answer; gave up on it", {
      model: pool.name,
      waitedMs: redisGraceMs,
    });
  }
}
