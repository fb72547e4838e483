import type { Logger } from "../../shared/log.js";
import { redisCloseGraceMs, settlesWithin } from "../../shared/process/deadline.js";
import type { JobService } from "./job-service.js";
import type { JobStore } from "./job-store.js";

/**
 * An orchestrator's heartbeat in Redis, every third of the presence TTL: it keeps this
 * orchestrator's presence key and job set alive, notices that Redis lost its data (the presence key
 * vanished between two beats) and fails the jobs it lost, and adopts the unfinished jobs of
 * orchestrators that are gone, so every accepted job reaches a final state.
 */
export class JobHeartbeat {
  readonly #store: JobStore;
  readonly #jobs: JobService;
  readonly #log: Logger;
  readonly #periodMs: number;
  #timer: NodeJS.Timeout | undefined;
  #beating: Promise<void> | undefined;
  #first = true;
  #closed = false;

  constructor(options: { store: JobStore; jobs: JobService; presenceTtlMs: number; log: Logger }) {
    this.#store = options.store;
    this.#jobs = options.jobs;
    this.#log = options.log;
    this.#periodMs = Math.max(100, Math.floor(options.presenceTtlMs / 3));
  }

  /** Beats once now (adopting what is orphaned already), then on a timer. */
  async start(): Promise<void> {
    await this.#beat();
    this.#timer = setInterval(() => {
      // One beat at a time: a slow Redis must not pile them up.
      this.#beating ??= this.#beat().finally(() => {
        this.#beating = undefined;
      });
    }, this.#periodMs);
    this.#timer.unref();
  }

  async #beat(): Promise<void> {
    if (this.#closed) return;
    try {
      const kept = await this.#store.beat(this.#first);
      this.#first = false;
      if (!kept) await this.#jobs.recoverFromLostRedis();
      const orphans = await this.#store.claimOrphans();
      if (orphans.length > 0) await this.#jobs.adopt(orphans);
    } catch (error) {
      this.#log.warn("orchestrator heartbeat failed", {
        error: error instanceof Error ? error.message : "unknown",
      });
    }
  }

  /** Stops beating and removes this orchestrator's presence (never throws). */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    clearInterval(this.#timer);
    await settlesWithin(
      (async () => {
        await this.#beating;
        await this.#store.leave();
      })().catch(() => {}),
      redisCloseGraceMs,
    );
  }
}
