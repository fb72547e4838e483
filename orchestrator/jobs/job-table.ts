import { JobRecord } from "./job-record.js";

export interface JobTableOptions {
  /** Finished jobs are forgotten this long after they end. */
  retentionMs: number;
  /** At most this many finished jobs are kept; the oldest go first. */
  maxFinished?: number;
  /** Told of each job once, when it ends (for metrics). */
  onEnd?: (record: JobRecord) => void;
}

/**
 * The jobs this orchestrator accepted, in its memory only: finished results are held for the
 * retention period so `/status` can answer, and never written anywhere else.
 */
export class JobTable {
  readonly #jobs = new Map<string, JobRecord>();
  readonly #retentionMs: number;
  readonly #maxFinished: number;
  readonly #sweeper: NodeJS.Timeout;
  readonly #onEnd: ((record: JobRecord) => void) | undefined;
  #createdSinceSweep = 0;
  readonly counts = { completed: 0, failed: 0, cancelled: 0, timedOut: 0 };

  constructor(options: JobTableOptions) {
    this.#retentionMs = options.retentionMs;
    this.#maxFinished = options.maxFinished ?? 10_000;
    this.#onEnd = options.onEnd;
    this.#sweeper = setInterval(
      () => this.sweep(),
      Math.min(60_000, Math.max(1000, this.#retentionMs)),
    );
    this.#sweeper.unref();
  }

  create(id: string): JobRecord {
    if (this.#jobs.has(id)) throw new Error(`job id ${id} is already in use`);
    const record = new JobRecord(id, { onEnd: this.endListener });
    this.#jobs.set(id, record);
    // The timer sweeps once a minute at most; a busy service ends thousands of jobs in that time,
    // so a sweep also runs every `maxFinished` new jobs once the table is past twice the cap.
    this.#createdSinceSweep += 1;
    if (this.#jobs.size > 2 * this.#maxFinished && this.#createdSinceSweep >= this.#maxFinished) {
      this.sweep();
    }
    return record;
  }

  /** The listener a record of this table tells its end to (for records made elsewhere). */
  readonly endListener = (record: JobRecord): void => this.#counted(record);

  /**
   * Adds a record made elsewhere (rebuilt from Redis); returns the one now in the table (an
   * existing record with that id wins).
   */
  insert(record: JobRecord): JobRecord {
    const existing = this.#jobs.get(record.id);
    if (existing !== undefined) return existing;
    this.#jobs.set(record.id, record);
    return record;
  }

  /** Records held: unfinished ones, and finished ones within retention and the cap. */
  get size(): number {
    return this.#jobs.size;
  }

  get(id: string): JobRecord | undefined {
    return this.#jobs.get(id);
  }

  has(id: string): boolean {
    return this.#jobs.has(id);
  }

  /** Counts a job that just ended, for `/health` and the metrics (its record tells, once). */
  #counted(record: JobRecord): void {
    if (record.status === "COMPLETED") this.counts.completed += 1;
    else if (record.status === "FAILED") this.counts.failed += 1;
    else if (record.status === "CANCELLED") this.counts.cancelled += 1;
    else if (record.status === "TIMED_OUT") this.counts.timedOut += 1;
    this.#onEnd?.(record);
  }

  /** Jobs not yet finished, by status. */
  unfinished(): { inQueue: number; inProgress: number } {
    let inQueue = 0;
    let inProgress = 0;
    for (const record of this.#jobs.values()) {
      if (record.status === "IN_QUEUE") inQueue += 1;
      else if (record.status === "IN_PROGRESS") inProgress += 1;
    }
    return { inQueue, inProgress };
  }

  /** Whether a job that ended within `withinMs` still has chunks no `/stream` poll took. */
  hasRecentlyEndedUnstreamed(withinMs: number, now = performance.now()): boolean {
    for (const record of this.#jobs.values()) {
      if (
        record.endedAt !== undefined &&
        now - record.endedAt < withinMs &&
        record.hasUnstreamedChunks
      ) {
        return true;
      }
    }
    return false;
  }

  /** Forgets finished jobs past retention, and the oldest beyond the cap. */
  sweep(now = performance.now()): void {
    this.#createdSinceSweep = 0;
    const finished: JobRecord[] = [];
    for (const record of this.#jobs.values()) {
      if (!record.terminal || record.endedAt === undefined) continue;
      if (now - record.endedAt >= this.#retentionMs) this.#jobs.delete(record.id);
      else finished.push(record);
    }
    const excess = finished.length - this.#maxFinished;
    if (excess > 0) {
      finished.sort((a, b) => (a.endedAt ?? 0) - (b.endedAt ?? 0));
      for (const record of finished.slice(0, excess)) this.#jobs.delete(record.id);
    }
  }

  close(): void {
    clearInterval(this.#sweeper);
  }
}
