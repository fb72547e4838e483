import type { JobRecord } from "./job-record.js";
import type { JobSignals } from "./job-signals.js";

/** What is kept of a tracked job (a `TrackedJob`). */
export interface PersistedJob {
  readonly id: string;
  readonly record: JobRecord;
  /** When it times out, epoch ms. */
  readonly deadline: number;
  readonly encryptOutput: boolean;
}

/**
 * The seam between a job's life and what makes it outlive this process. The job service calls
 * these, whatever is behind them: {@link EphemeralJobs} for a RunPod worker (the platform keeps
 * results), `durable/durable-jobs.ts` for the local API (records in Redis, other orchestrators'
 * jobs, adoption of a gone orchestrator's jobs, recovery after Redis lost its data).
 */
export interface JobPersistence {
  /** Writes the record of a job tracked here, unfinished (beside its queueing, on adoption). */
  saveUnfinished(job: PersistedJob): Promise<void>;
  /** Records a tracked job's end, and deletes what Redis holds of its run. */
  saveEnded(job: PersistedJob): Promise<void>;
  /**
   * A job this process does not track, read-only: its final record, or another orchestrator's
   * unfinished job as far as it got. Reading never takes a job over.
   */
  find(jobId: string): Promise<JobRecord | undefined>;
  /** Starts what runs in the background (a heartbeat); resolves once it ran once. */
  start(): Promise<void>;
  /** Stops it (idempotent, never throws). */
  close(): Promise<void>;
}

/**
 * Jobs that live in this process only: nothing is written for them, and a job's end deletes what
 * Redis holds of its run (its reply stream and cancel mark) and marks its owner key ended.
 */
export class EphemeralJobs implements JobPersistence {
  readonly #signals: JobSignals;

  constructor(signals: JobSignals) {
    this.#signals = signals;
  }

  async saveUnfinished(): Promise<void> {}

  saveEnded(job: PersistedJob): Promise<void> {
    return this.#signals.forget(job.id);
  }

  async find(): Promise<JobRecord | undefined> {
    return undefined;
  }

  async start(): Promise<void> {}

  async close(): Promise<void> {}
}
