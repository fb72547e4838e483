import type { KeyRing } from "../../../shared/crypto/index.js";
import type { RedisNames } from "../../../shared/naming.js";
import { openJson, sealJson } from "../../../shared/protocol/index.js";
import { type RedisClient, scanKeys, sendEach } from "../../../shared/redis/index.js";
import { endRun } from "../job-signals.js";
import { type JobSnapshot, jobSnapshotSchema } from "./job-snapshot.js";

export interface JobStoreOptions {
  redis: RedisClient;
  names: RedisNames;
  keyRing: KeyRing;
  /** This orchestrator's id. */
  owner: string;
  /** How long an ended job's record is kept (`RESULT_RETENTION_MS`). */
  retentionMs: number;
  /** This orchestrator counts as gone this long after its last heartbeat. */
  presenceTtlMs: number;
  /** The longest a job may live: the job set of a dead orchestrator waits this long for an heir. */
  maxJobLifeMs: number;
}

/**
 * Takes the job sets of orchestrators that are gone: moves their members into the caller's set
 * and returns them. KEYS: their presence key, their job set, the caller's job set; ARGV: the
 * caller's set expiry (ms). Atomic, so two orchestrators never adopt the same job.
 */
const claimScript = `
if redis.call('EXISTS', KEYS[1]) == 1 then return {} end
local members = redis.call('SMEMBERS', KEYS[2])
if #members > 0 then
  redis.call('SADD', KEYS[3], unpack(members))
  redis.call('PEXPIRE', KEYS[3], ARGV[1])
end
redis.call('DEL', KEYS[2])
return members
`;

/**
 * The jobs' records in Redis, sealed, each written with its expiry in the same command: a job's
 * record while it is unfinished (kept for its longest life), its final record for the retention
 * period. Beside them, each orchestrator's presence key and the set of the unfinished jobs it
 * tracks, so another orchestrator can take over the jobs of one that is gone.
 */
export class JobStore {
  readonly #options: JobStoreOptions;

  constructor(options: JobStoreOptions) {
    this.#options = options;
  }

  get owner(): string {
    return this.#options.owner;
  }

  /**
   * Writes an unfinished job's record and lists it as this orchestrator's: two writes sent at
   * once, since the record lives in the job's slot and the list in the pool's (on a cluster,
   * different nodes). Each carries its expiry; a list entry without a record is skipped by an heir.
   */
  async saveUnfinished(snapshot: JobSnapshot): Promise<void> {
    const { redis, names, keyRing, owner, maxJobLifeMs } = this.#options;
    const lifeMs = Math.max(1000, snapshot.deadline - Date.now()) + this.#options.retentionMs;
    await Promise.all([
      redis.set(names.jobRecord(snapshot.id), sealJson(keyRing, snapshot), "PX", lifeMs),
      redis
        .multi()
        .sadd(names.orchestratorJobs(owner), snapshot.id)
        .pexpire(names.orchestratorJobs(owner), maxJobLifeMs)
        .exec(),
    ]);
  }

  /**
   * Writes an ended job's final record for the retention period, takes it off this
   * orchestrator's list, deletes what remains of its run (its reply stream, its cancel mark) and
   * marks its owner key ended (a queue entry of it that a failover brings back is then dropped).
   */
  async saveEnded(snapshot: JobSnapshot): Promise<void> {
    const { redis, names, keyRing, owner, retentionMs } = this.#options;
    // The job's keys share its hash tag: one MULTI. This orchestrator's list is the pool's.
    const jobKeys = redis.multi();
    if (retentionMs > 0) {
      jobKeys.set(names.jobRecord(snapshot.id), sealJson(keyRing, snapshot), "PX", retentionMs);
    } else {
      jobKeys.del(names.jobRecord(snapshot.id));
    }
    await Promise.all([
      endRun(jobKeys, names, snapshot.id).exec(),
      redis.srem(names.orchestratorJobs(owner), snapshot.id),
    ]);
  }

  /** A job's record, or `undefined` when Redis holds none (unknown, expired, or lost). */
  async load(jobId: string): Promise<JobSnapshot | undefined> {
    const { redis, names, keyRing } = this.#options;
    const sealed = await redis.get(names.jobRecord(jobId));
    if (sealed === null) return undefined;
    return openJson(keyRing, sealed, jobSnapshotSchema, "a job's record");
  }

  /** Which of these jobs have a record in Redis. */
  async existing(jobIds: readonly string[]): Promise<Set<string>> {
    const { redis, names } = this.#options;
    if (jobIds.length === 0) return new Set();
    const results = await sendEach(
      redis,
      jobIds.map((id) => ["exists", names.jobRecord(id)]),
    );
    return new Set(jobIds.filter((_, index) => results[index]?.[1] === 1));
  }

  /**
   * Refreshes this orchestrator's presence and its job set's expiry. Resolves `false` when the
   * presence key was missing although an earlier heartbeat wrote it: Redis lost its data.
   */
  async beat(first: boolean): Promise<boolean> {
    const { redis, names, owner, presenceTtlMs, maxJobLifeMs } = this.#options;
    const results = await redis
      .multi()
      .pexpire(names.orchestratorAlive(owner), presenceTtlMs)
      .set(names.orchestratorAlive(owner), "1", "PX", presenceTtlMs)
      .pexpire(names.orchestratorJobs(owner), maxJobLifeMs)
      .exec();
    return first || results?.[0]?.[1] === 1;
  }

  /** Whether the orchestrator with this id is alive (its presence key is there). */
  async isAlive(orchestratorId: string): Promise<boolean> {
    const { redis, names } = this.#options;
    return (await redis.exists(names.orchestratorAlive(orchestratorId))) === 1;
  }

  /** Takes over the unfinished jobs of every orchestrator that is gone; returns their ids. */
  async claimOrphans(): Promise<string[]> {
    const { redis, names, owner } = this.#options;
    const claimed: string[] = [];
    for await (const keys of scanKeys(redis, names.orchestratorJobsPattern)) {
      for (const key of keys) {
        const other = key.slice(names.orchestratorJobs("").length);
        if (other === owner) continue;
        claimed.push(...(await this.#claimFrom(other)));
      }
    }
    return claimed;
  }

  /** Takes over the unfinished jobs of one orchestrator, if it is gone. */
  async claimFrom(orchestratorId: string): Promise<string[]> {
    if (orchestratorId === this.#options.owner) return [];
    return this.#claimFrom(orchestratorId);
  }

  async #claimFrom(other: string): Promise<string[]> {
    const { redis, names, owner, maxJobLifeMs } = this.#options;
    const members = await redis.eval(
      claimScript,
      3,
      names.orchestratorAlive(other),
      names.orchestratorJobs(other),
      names.orchestratorJobs(owner),
      maxJobLifeMs,
    );
    return Array.isArray(members) ? members.map(String) : [];
  }

  /** Deletes this orchestrator's presence key, so others may adopt what it leaves at once. */
  async leave(): Promise<void> {
    const { redis, names, owner } = this.#options;
    await redis.del(names.orchestratorAlive(owner));
  }
}
