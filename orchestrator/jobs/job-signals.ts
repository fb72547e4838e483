import type { ChainableCommander } from "ioredis";
import { RedisNames } from "../../shared/naming.js";
import { type ControlMessage, encodeContinuedFrom } from "../../shared/protocol/index.js";
import { type RedisClient, sendEach } from "../../shared/redis/index.js";
import { endedOwner, endedOwnerTtlMs, parseOwner } from "../../shared/registry/job-owner.js";
import type { ModelQueues } from "./model-queues.js";

/** How long a cancel mark outlives its job's longest possible wait for a gpu-worker. */
const cancelMarkSeconds = 3600;

/**
 * The Redis side of a job's end, in one place: telling the gpu-workers to stop it, taking it off
 * its queue, and deleting what Redis holds of its run. Keys are written with their expiry in the
 * same command.
 */
export class JobSignals {
  readonly #redis: RedisClient;
  readonly #names: RedisNames;
  readonly #queues: ModelQueues;

  constructor(options: { redis: RedisClient; names: RedisNames; queues: ModelQueues }) {
    this.#redis = options.redis;
    this.#names = options.names;
    this.#queues = options.queues;
  }

  /**
   * Stops a job wherever it is: marks it cancelled and tells the gpu-workers (the mark first, so a
   * gpu-worker that takes the job after the message went by still sees it), then takes it off its
   * queue (unless `dequeue` is false: the job is another orchestrator's, which must hear of its
   * end from the gpu-worker). Resolves `true` when it was taken off the queue (nobody will confirm
   * its end). `queueJobId`: the BullMQ id of the job's current attempt (see `worker-watch.ts`).
   */
  async stop(jobId: string, model: string, dequeue = true, queueJobId = jobId): Promise<boolean> {
    const message: ControlMessage = { type: "cancel", jobId };
    await this.#redis
      .multi()
      .set(this.#names.cancelKey(jobId), "1", "EX", cancelMarkSeconds)
      .publish(this.#names.controlChannel, JSON.stringify(message))
      .exec();
    return dequeue ? this.#queues.removeWaiting(model, queueJobId) : false;
  }

  /**
   * Asks the gpu-workers to load a model no gpu-worker has loaded (a job waits for it): one of
   * those that can hold it claims the load (see `gpu-worker/scheduling/`).
   */
  async requestLoad(model: string): Promise<void> {
    const message: ControlMessage = { type: "load", model };
    await this.#redis.publish(this.#names.controlChannel, JSON.stringify(message));
  }

  /**
   * Fences a job's earlier attempts off before it is queued as `attempt`: its owner key names the
   * new attempt with no gpu-worker yet (a lost gpu-worker can no longer claim it or write for it).
   * A job run again from its prompt has the replies the lost attempt stored deleted; one continued
   * from reply `from` keeps them (they are its text so far, for an orchestrator that adopts it or
   * mirrors it), and its stream gets the mark that the new attempt starts there.
   */
  async fence(jobId: string, attempt: number, ttlMs: number, from?: number): Promise<void> {
    const stream = this.#names.deltaStream(jobId);
    const multi = this.#redis.multi().set(this.#names.ownerKey(jobId), `${attempt}:`, "PX", ttlMs);
    if (from === undefined) multi.del(stream);
    else {
      multi
        .xadd(
          stream,
          RedisNames.continuedFromEntryId(attempt),
          "m",
          encodeContinuedFrom(jobId, attempt, from),
        )
        .pexpire(stream, ttlMs);
    }
    for (const [error] of (await multi.exec()) ?? []) if (error) throw error;
  }

  /**
   * Deletes an ended job's reply stream and cancel mark, and marks its owner key ended: a
   * gpu-worker still running the job can write nothing more for it, and one that takes a queue
   * entry of it again (brought back by a failover) drops it.
   */
  async forget(jobId: string): Promise<void> {
    await endRun(this.#redis.multi(), this.#names, jobId).exec();
  }

  /**
   * Clears what Redis holds of an earlier run of a job id that is queued again (RunPod delivers a
   * job again when it did not get its result, and this orchestrator no longer has it) and returns
   * the attempt the new run is queued as. An ended run leaves its `ended` owner mark (a claim of the
   * new run would be refused) and a finished queue entry kept for the dashboard (BullMQ would take
   * the new entry for it and add nothing): both are removed, and the job starts at attempt 1. A run
   * still under way (its orchestrator gone) is fenced off like a lost attempt, its entry removed,
   * and the job starts at the next attempt. Nothing there: one round trip, attempt 1.
   */
  async startOver(jobId: string, model: string, ttlMs: number): Promise<number> {
    const [[, owner] = [], [, entries] = []] = await sendEach(this.#redis, [
      ["get", this.#names.ownerKey(jobId)],
      ["exists", this.#names.queueJob(model, jobId)],
    ]);
    const earlier = parseOwner(owner as string | null);
    if (earlier === undefined) {
      if (owner === endedOwner) await this.#redis.del(this.#names.ownerKey(jobId));
      // Finished or waiting: removed; taken and not yet claimed (locked): fenced off below.
      if (entries === 0 || (await this.#queues.removeWaiting(model, jobId))) return 1;
    }
    const attempt = (earlier?.attempt ?? 1) + 1;
    await this.fence(jobId, attempt, ttlMs);
    // A cancel of the earlier run is not this one's.
    await this.#redis.del(this.#names.cancelKey(jobId));
    await this.#queues.removeAbandoned(model, RedisNames.queueJobId(jobId, attempt - 1));
    return attempt;
  }
}

/**
 * Adds to `multi` the end of a job's run in Redis: its reply stream and cancel mark deleted, its
 * owner key marked ended (see {@link JobSignals.forget}). The keys share the job's hash tag.
 */
export function endRun(multi: ChainableCommander, names: RedisNames, jobId: string) {
  return multi
    .del(names.deltaStream(jobId), names.cancelKey(jobId))
    .set(names.ownerKey(jobId), endedOwner, "PX", endedOwnerTtlMs);
}
