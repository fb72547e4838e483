import type { KeyRing } from "../../../shared/crypto/index.js";
import { messageOf } from "../../../shared/errors/index.js";
import type { Logger } from "../../../shared/log.js";
import type { RedisNames } from "../../../shared/naming.js";
import { redisCloseGraceMs, settlesWithin } from "../../../shared/process/deadline.js";
import { isTerminalStatus } from "../../../shared/protocol/index.js";
import { onTopologyChange, type RedisClient } from "../../../shared/redis/index.js";
import { parseOwner } from "../../../shared/registry/job-owner.js";
import type { ClientRings } from "../../admission/admit-request.js";
import type { ReplyRelay } from "../../relay/reply-relay.js";
import type { JobPersistence, PersistedJob } from "../job-persistence.js";
import type { JobRecord } from "../job-record.js";
import type { JobTable } from "../job-table.js";
import { failLostJobs } from "../lost-jobs.js";
import type { ModelQueues } from "../model-queues.js";
import type { TrackedJob } from "../tracked-job.js";
import { JobMirrors } from "./job-mirrors.js";
import { type JobSnapshot, recordOf, snapshotOf } from "./job-snapshot.js";
import type { JobStore } from "./job-store.js";

/** What durable jobs need of the job service: its tracked jobs, and a way to add one. */
export interface JobHost {
  /** Whether it tracks this job now. */
  tracks(jobId: string): boolean;
  /** The jobs it tracks now. */
  tracked(): Iterable<TrackedJob>;
  /** Tracks a job adopted from an orchestrator that is gone; it is on its queue already. */
  adopt(record: JobRecord, snapshot: JobSnapshot & { model: string }, attempt: number): TrackedJob;
}

export interface DurableJobsOptions {
  store: JobStore;
  redis: RedisClient;
  names: RedisNames;
  keyRing: KeyRing;
  /** The named clients: a mirrored job's encrypted chunks are sealed to its client. */
  clients?: ClientRings | undefined;
  table: JobTable;
  queues: ModelQueues;
  relay: ReplyRelay;
  /** An adopted job's current attempt is read from its owner key (the watch of gpu-workers runs). */
  readAttempts: boolean;
  /** This orchestrator counts as gone this long after its last heartbeat (`REGISTRY_TTL_MS`). */
  presenceTtlMs: number;
  metrics?: { jobRecovered(model: string, how: "adopted"): void } | undefined;
  log: Logger;
}

/**
 * Jobs that outlive the orchestrator that accepted them (the local API): each job's record in
 * Redis (written when it is accepted and when it ends), read-only mirrors of other live
 * orchestrators' jobs for callers that ask this one, and a heartbeat every third of
 * `REGISTRY_TTL_MS` that keeps this orchestrator's presence, adopts the unfinished jobs of
 * orchestrators that are gone (the one place jobs are taken over), and fails `JOB_LOST` the jobs
 * Redis lost when it lost its data.
 */
export class DurableJobs implements JobPersistence {
  readonly #options: DurableJobsOptions;
  readonly #mirrors: JobMirrors;
  #host: JobHost | undefined;
  #timer: NodeJS.Timeout | undefined;
  #beating: Promise<void> | undefined;
  #first = true;
  #closed = false;

  constructor(options: DurableJobsOptions) {
    this.#options = options;
    this.#mirrors = new JobMirrors(options);
  }

  /** Jobs of other orchestrators mirrored now. */
  get mirrored(): number {
    return this.#mirrors.size;
  }

  /** The job service whose jobs these are (set once, before {@link start}). */
  attach(host: JobHost): void {
    this.#host = host;
  }

  saveUnfinished(job: PersistedJob): Promise<void> {
    return this.#options.store.saveUnfinished(this.#snapshotOf(job));
  }

  saveEnded(job: PersistedJob): Promise<void> {
    return this.#options.store.saveEnded(this.#snapshotOf(job));
  }

  async find(jobId: string): Promise<JobRecord | undefined> {
    const { store, table } = this.#options;
    const snapshot = await store.load(jobId);
    if (snapshot === undefined) return undefined;
    if (isTerminalStatus(snapshot.status)) {
      // Chunks a mirror here already handed to `/stream` are not handed out again.
      const streamed = Math.max(snapshot.streamed ?? 0, this.#mirrors.streamedOf(jobId));
      this.#mirrors.forget(jobId);
      return table.insert(recordOf({ ...snapshot, streamed }));
    }
    return this.#mirrors.follow(snapshot);
  }

  /** Beats once now (adopting what is orphaned already), then on a timer. */
  async start(): Promise<void> {
    this.#watchTopology();
    await this.#beat();
    this.#timer = setInterval(
      () => {
        // One beat at a time: a slow Redis must not pile them up.
        this.#beating ??= this.#beat().finally(() => {
          this.#beating = undefined;
        });
      },
      Math.max(100, Math.floor(this.#options.presenceTtlMs / 3)),
    );
    this.#timer.unref();
  }

  /** Stops beating and removes this orchestrator's presence (never throws). */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    clearInterval(this.#timer);
    await settlesWithin(
      (async () => {
        await this.#beating;
        await this.#options.store.leave();
      })().catch(() => {}),
      redisCloseGraceMs,
    );
  }

  /**
   * A failover makes the next beats check the jobs: the promoted replica may lack the last
   * writes of the primary it replaces. On a cluster, a node lost or added is the sign; on one
   * server or a Sentinel-managed primary, a reconnect.
   */
  #watchTopology(): void {
    onTopologyChange(this.#options.redis, () => {
      this.#topologyChecks = 2;
    });
  }

  #topologyChecks = 0;

  async #beat(): Promise<void> {
    if (this.#closed) return;
    try {
      const kept = await this.#options.store.beat(this.#first);
      this.#first = false;
      const changed = this.#topologyChecks > 0;
      if (changed) this.#topologyChecks -= 1;
      if (!kept || changed) await this.#recoverFromLostRedis();
      const orphans = await this.#options.store.claimOrphans();
      if (orphans.length > 0) await this.#adopt(orphans);
    } catch (error) {
      this.#options.log.warn("orchestrator heartbeat failed", { error: messageOf(error) });
    }
  }

  /**
   * Takes over jobs an orchestrator that is gone had accepted (claimed already, see
   * `JobStore.claimOrphans`): each is tracked here to its end, from its record in Redis, its
   * reply stream (what it produced so far) and its reply channel (what it produces next: its
   * old orchestrator's channel, or on a cluster its own shard channel).
   */
  async #adopt(ids: readonly string[]): Promise<void> {
    const host = this.#requireHost();
    const { store, table, relay, log, metrics } = this.#options;
    for (const id of ids) {
      if (host.tracks(id)) continue;
      let snapshot: JobSnapshot | undefined;
      try {
        snapshot = await store.load(id);
      } catch (error) {
        log.warn("could not read an adopted job's record", { jobId: id, error: messageOf(error) });
        continue;
      }
      // Expired or lost: nothing to answer for.
      if (snapshot === undefined) continue;
      const streamed = Math.max(snapshot.streamed ?? 0, this.#mirrors.streamedOf(id));
      this.#mirrors.forget(id);
      const record = table.insert(recordOf({ ...snapshot, streamed }, table.endListener));
      const { model } = snapshot;
      if (record.terminal || model === undefined) continue;
      try {
        await relay.follow(id, snapshot.owner);
      } catch (error) {
        // Its primary is being replaced: subscribed once the cluster's subscribers are back, its
        // stream read then (see `ReplyRelay`). Not adopting it would leave it to nobody.
        log.warn("could not subscribe to an adopted job's replies yet", {
          jobId: id,
          error: messageOf(error),
        });
      }
      const job = host.adopt(record, { ...snapshot, model }, await this.#attemptOf(id));
      await this.saveUnfinished(job);
      metrics?.jobRecovered(model, "adopted");
      log.info("job adopted from an orchestrator that is gone", {
        jobId: id,
        model,
        from: snapshot.owner,
      });
      void relay.backfill(id);
    }
  }

  /** An adopted job's current attempt: the orchestrator that is gone may have queued it again. */
  async #attemptOf(jobId: string): Promise<number> {
    const { redis, names, readAttempts } = this.#options;
    if (!readAttempts) return 1;
    return parseOwner(await redis.get(names.ownerKey(jobId)))?.attempt ?? 1;
  }

  /**
   * After Redis lost its data or failed over (see `lost-jobs.ts`): fails `JOB_LOST` the jobs whose
   * writes it lost, and writes the records of the others again.
   */
  async #recoverFromLostRedis(): Promise<void> {
    const host = this.#requireHost();
    const { queues, redis, names, log } = this.#options;
    const lost = await failLostJobs(host.tracked(), { redis, names, queues });
    const kept = [...host.tracked()];
    await Promise.all(kept.map((job) => this.saveUnfinished(job)));
    // Also reached when this orchestrator's presence merely lapsed (Redis unreachable for longer
    // than the TTL, data intact): then nothing was lost.
    log[lost > 0 ? "warn" : "info"]("checked the jobs after this orchestrator's presence lapsed", {
      lost,
      kept: kept.length,
    });
  }

  #snapshotOf(job: PersistedJob): JobSnapshot {
    return snapshotOf(job.record, {
      owner: this.#options.store.owner,
      deadline: job.deadline,
      encryptOutput: job.encryptOutput,
    });
  }

  #requireHost(): JobHost {
    if (this.#host === undefined) throw new Error("durable jobs used before attach()");
    return this.#host;
  }
}
