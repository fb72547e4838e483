import { Worker } from "bullmq";
import type { Redis } from "ioredis";
import type { RedisNames } from "../../shared/naming.js";
import type { ModelPool } from "../pool/model-pool.js";
import { createJobProcessor, type JobProcessorOptions } from "./job-processor.js";

export interface ModelWorkerOptions extends JobProcessorOptions {
  connection: Redis;
  names: RedisNames;
  /** BullMQ's lock duration, and the period of the check for jobs whose lock lapsed. */
  lockMs: number;
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
    autorun: true,
  });
  worker.on("error", (error: Error) => {
    log.error("queue worker error", { model: pool.name, error: error.message });
  });
  return worker;
}

/** Closes a worker: waits for its active jobs up to `timeoutMs`, then aborts them and waits. */
export async function closeModelWorker(
  worker: Worker,
  pool: ModelPool,
  abortAll: () => void,
  timeoutMs: number,
): Promise<void> {
  const closing = worker.close();
  const timedOut = await Promise.race([
    closing.then(() => false),
    new Promise<boolean>((resolve) => setTimeout(() => resolve(true), timeoutMs).unref()),
  ]);
  if (timedOut) abortAll();
  await closing;
  await pool.close();
}
