import type { KeyRing } from "../../shared/crypto/index.js";
import type { Logger } from "../../shared/log.js";
import type { RedisNames } from "../../shared/naming.js";
import type { FinalChunk } from "../../shared/protocol/index.js";
import type { RedisClient } from "../../shared/redis/index.js";
import type { CapacityPolicy } from "../admission/admit-capacity.js";
import type { AdmissionPolicy } from "../admission/admit-request.js";
import type { JobStore } from "./durable/job-store.js";
import type { JobTable } from "./job-table.js";
import type { ModelQueues } from "./model-queues.js";

export interface JobServiceOptions {
  redis: RedisClient;
  /** The connection the reply relay subscribes on (a subscribed connection does nothing else). */
  subscriber: RedisClient;
  names: RedisNames;
  /** This orchestrator's id: its reply channel, and the owner of its jobs' records. */
  orchestratorId: string;
  queues: ModelQueues;
  table: JobTable;
  admission: AdmissionPolicy;
  /** Live-worker and queue-limit checks; without it every configured model is taken, unlimited. */
  capacity?: CapacityPolicy;
  keyRing: KeyRing;
  /** Default limit on a job's life, from acceptance; a submit may ask for a shorter or longer one. */
  jobTimeoutMs: number;
  /**
   * `REGISTRY_TTL_MS`: when set, running jobs whose gpu-worker's registry entry lapsed are found
   * within it and run again or failed `WORKER_LOST` (see `worker-watch.ts`).
   */
  registryTtlMs?: number;
  /**
   * A job lost with its gpu-worker after it replied goes on elsewhere from the text delivered, up
   * to `maxAttempts` runs in all (`MAX_JOB_ATTEMPTS`). Without it (a RunPod worker) such a job
   * fails `WORKER_LOST`, and one lost before it replied runs once more at most.
   */
  continuations?: { maxAttempts: number };
  /**
   * The jobs' records in Redis: with it, jobs are answered for after this process restarts, or by
   * any orchestrator on the same Redis, and jobs Redis lost are failed `JOB_LOST` (see
   * `durable/durable-jobs.ts`). Without it (a RunPod worker: the platform keeps results) jobs live
   * in this process's memory only.
   */
  store?: JobStore;
  /** Told of each completed job's final chunk (latencies, token counts), and of recoveries. */
  metrics?: {
    jobCompleted(model: string, final: FinalChunk, client?: string): void;
    jobRecovered(model: string, how: "requeued" | "continued" | "adopted"): void;
  };
  log: Logger;
}

/** Jobs by end (since start), and unfinished ones by status (now). */
export interface JobCounts {
  completed: number;
  failed: number;
  cancelled: number;
  timedOut: number;
  inQueue: number;
  inProgress: number;
}

export interface SubmitOptions {
  /** The job's id (RunPod's, in worker mode); a random UUID by default. */
  id?: string;
  /** Overrides the default job timeout, in milliseconds. */
  timeoutMs?: number;
}
