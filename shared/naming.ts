/**
 * Every Redis key, channel and queue name this project uses, in one place. All start with the
 * deployment's prefix (`REDIS_PREFIX`) so that several deployments, or tests, share one Redis.
 * Names carry model names and random ids only, never anything from a request's content.
 *
 * Hash tags (the part in braces; Redis Cluster puts keys with the same tag in the same slot) keep
 * together what one script or MULTI touches: each model's queue keys and its admission
 * reservations (`{model-<name>}`: models spread over a cluster's nodes), each job's record, reply
 * stream, cancel mark and owner key (`{<job id>}`: a job's scripts stay on one node), and the
 * small pool-wide state that is read and written across models and orchestrators in one step:
 * the model registry, the gpu-worker budgets, load claims, orchestrator presence and job sets
 * (`{pool}`). See docs/redis-topologies.md.
 */
/** The hash tag of the pool-wide keys. */
const poolTag = "{pool}";
/** What a BullMQ job id of a later attempt adds to the job id. */
const attemptSuffix = ".attempt-";

export class RedisNames {
  constructor(readonly prefix: string) {}

  /** BullMQ's `prefix` option: queue keys are `<prefix>:<queue>:...`. */
  get bullPrefix(): string {
    return this.prefix;
  }

  /**
   * The BullMQ queue of one model, in braces: every key of the queue (BullMQ's `<prefix>:<queue>:…`)
   * and its reservations share the hash tag `model-<name>`.
   */
  modelQueue(model: string): string {
    return `{model-${model}}`;
  }

  /** The pub/sub channel an orchestrator receives its jobs' replies on. */
  replyChannel(orchestratorId: string): string {
    return `${this.prefix}:reply:${orchestratorId}`;
  }

  /**
   * The sharded pub/sub channel of one job's replies on a Redis Cluster (`SPUBLISH`): in the
   * job's slot, as the fenced reply script that publishes on it requires. One server and Sentinel
   * use the orchestrator's {@link replyChannel} instead.
   */
  jobReplyChannel(jobId: string): string {
    return `${this.prefix}:replies:{${jobId}}`;
  }

  /** The stream holding one job's replies, to repair what pub/sub lost. */
  deltaStream(jobId: string): string {
    return `${this.prefix}:deltas:{${jobId}}`;
  }

  /** Orchestrator → gpu-worker control messages (cancellation). */
  get controlChannel(): string {
    return `${this.prefix}:control`;
  }

  /** Marks a job cancelled for a gpu-worker that picks it up after the control message passed. */
  cancelKey(jobId: string): string {
    return `${this.prefix}:cancel:{${jobId}}`;
  }

  /**
   * Who runs one job: `<attempt>:<gpu-worker id>`, written by the gpu-worker that takes the job,
   * or `<attempt>:` when the orchestrator has fenced off earlier attempts (see
   * `registry/job-owner.ts`). Every write of a reply checks it.
   */
  ownerKey(jobId: string): string {
    return `${this.prefix}:owner:{${jobId}}`;
  }

  /**
   * The BullMQ job id of one attempt of a job: the job's own id for the first, a distinct one for
   * a job put back on its queue after its gpu-worker was lost (the lost one may stay active in
   * BullMQ until its lock lapses).
   */
  static queueJobId(jobId: string, attempt: number): string {
    return attempt <= 1 ? jobId : `${jobId}${attemptSuffix}${attempt}`;
  }

  /** The job and attempt of a BullMQ job id ({@link queueJobId} read back). */
  static parseQueueJobId(queueJobId: string): { jobId: string; attempt: number } {
    const at = queueJobId.lastIndexOf(attemptSuffix);
    const attempt = at < 0 ? Number.NaN : Number(queueJobId.slice(at + attemptSuffix.length));
    return Number.isInteger(attempt) && attempt > 1
      ? { jobId: queueJobId.slice(0, at), attempt }
      : { jobId: queueJobId, attempt: 1 };
  }

  /**
   * The model registry's hash for one model: field = gpu-worker id, value = its
   * {@link import("./registry/model-registry.js").RegistryEntry} (state and expiry).
   */
  modelRegistry(model: string): string {
    return `${this.prefix}:${poolTag}:registry:${model}`;
  }

  /**
   * SCAN patterns of the keys that name a model without a list of models: its registry hash, and
   * its queue's meta hash (BullMQ writes it when a `Queue` opens, unless `skipMetasUpdate`). The
   * prefix needs no escaping: `REDIS_PREFIX` allows no glob characters.
   */
  get modelKeyPatterns(): readonly string[] {
    return [`${this.prefix}:${poolTag}:registry:*`, `${this.bullPrefix}:{model-*}:meta`];
  }

  /** The model named by a key that matches {@link modelKeyPatterns}; `undefined` for another key. */
  modelOfKey(key: string): string | undefined {
    const registry = `${this.prefix}:${poolTag}:registry:`;
    if (key.startsWith(registry)) return key.slice(registry.length);
    const queue = `${this.bullPrefix}:{model-`;
    if (!key.startsWith(queue) || !key.endsWith("}:meta")) return undefined;
    return key.slice(queue.length, -"}:meta".length) || undefined;
  }

  /**
   * Who loads a model that no gpu-worker has loaded: the id of the one gpu-worker that claimed the
   * load, with an expiry it refreshes while it loads (a gpu-worker that dies mid-load frees it).
   */
  loadClaim(model: string): string {
    return `${this.prefix}:${poolTag}:load:${model}`;
  }

  /** The live gpu-workers' budgets and what they hold: field = gpu-worker id, value = JSON. */
  get gpuWorkers(): string {
    return `${this.prefix}:${poolTag}:gpu-workers`;
  }

  /** One accepted job's sealed record (its state, and its chunks once it ended). */
  jobRecord(jobId: string): string {
    return `${this.prefix}:job:{${jobId}}`;
  }

  /** Present while the orchestrator with this id runs (refreshed by its heartbeat). */
  orchestratorAlive(orchestratorId: string): string {
    return `${this.prefix}:${poolTag}:orchestrator:${orchestratorId}`;
  }

  /** The ids of the unfinished jobs an orchestrator tracks (a set). */
  orchestratorJobs(orchestratorId: string): string {
    return `${this.prefix}:${poolTag}:jobs:${orchestratorId}`;
  }

  /** The match pattern of every orchestrator's job set. */
  get orchestratorJobsPattern(): string {
    return `${this.prefix}:${poolTag}:jobs:*`;
  }

  /** BullMQ's hash of one job of a model's queue. */
  queueJob(model: string, jobId: string): string {
    return `${this.bullPrefix}:${this.modelQueue(model)}:${jobId}`;
  }

  /** BullMQ's lock of one job of a model's queue: its token names the gpu-worker that took it. */
  queueJobLock(model: string, jobId: string): string {
    return `${this.queueJob(model, jobId)}:lock`;
  }

  /**
   * Admission's reservations on one model's queue (a sorted set: job id → expiry, Redis time):
   * jobs admitted and on their way to the queue, counted against its limit until they are in it.
   */
  queueReservations(model: string): string {
    return `${this.prefix}:reserved:${this.modelQueue(model)}`;
  }

  /** Stream entry id of reply `seq` of a job's `attempt`: ids must grow and never be `0-0`. */
  static streamEntryId(attempt: number, seq: number): string {
    return `${attempt}-${seq + 1}`;
  }

  /**
   * Stream entry id of the mark that `attempt` (a continuation) goes on from a given seq: before
   * the attempt's replies, after every earlier attempt's.
   */
  static continuedFromEntryId(attempt: number): string {
    return `${attempt}-0`;
  }
}
