import type { KeyRing } from "../../../shared/crypto/index.js";
import type { RedisNames } from "../../../shared/naming.js";
import {
  decodeEnvelope,
  deltaChunkOf,
  encryptChunk,
  openReply,
} from "../../../shared/protocol/index.js";
import type { RedisClient } from "../../../shared/redis/index.js";
import type { ClientRings } from "../../admission/admit-request.js";
import type { JobRecord } from "../job-record.js";
import { type JobSnapshot, recordOf } from "./job-snapshot.js";

interface Mirror {
  record: JobRecord;
  encryptOutput: boolean;
  /** What its encrypted chunks are sealed with: its client's ring (the pool's: anonymous). */
  outputRing: KeyRing;
  /** The last entry of the job's reply stream already read. */
  lastEntryId: string;
}

/** Jobs of other orchestrators followed at once, at most (the least recently asked go first). */
const maxMirrors = 1000;

/**
 * Read-only copies of jobs that another live orchestrator tracks, for callers that ask this one
 * (several orchestrators behind one address): each is rebuilt from the job's record and caught up
 * from its reply stream whenever it is asked for, so `/status` shows its chunks so far and
 * `/stream` hands each chunk out once per orchestrator. Once the owner records the job's end, the
 * caller reads the final record instead.
 */
export class JobMirrors {
  readonly #redis: RedisClient;
  readonly #names: RedisNames;
  readonly #keyRing: KeyRing;
  readonly #clients: ClientRings | undefined;
  readonly #mirrors = new Map<string, Mirror>();

  constructor(options: {
    redis: RedisClient;
    names: RedisNames;
    keyRing: KeyRing;
    clients?: ClientRings | undefined;
  }) {
    this.#redis = options.redis;
    this.#names = options.names;
    this.#keyRing = options.keyRing;
    this.#clients = options.clients;
  }
  /** Jobs mirrored now. */
  get size(): number {
    return this.#mirrors.size;
  }

  /** How many chunks of this job `/stream` polls here already took (0 if none were mirrored). */
  streamedOf(jobId: string): number {
    return this.#mirrors.get(jobId)?.record.streamedCount ?? 0;
  }

  /** Stops following a job (it ended, or this orchestrator adopted it). */
  forget(jobId: string): void {
    this.#mirrors.delete(jobId);
  }

  /** The mirror of an unfinished job of another orchestrator, caught up with its reply stream. */
  async follow(snapshot: JobSnapshot): Promise<JobRecord> {
    let mirror = this.#mirrors.get(snapshot.id);
    if (mirror === undefined) {
      mirror = {
        record: recordOf(snapshot),
        encryptOutput: snapshot.encryptOutput,
        outputRing:
          (snapshot.client === undefined ? undefined : this.#clients?.ringOf(snapshot.client)) ??
          this.#keyRing,
        lastEntryId: "-",
      };
      if (this.#mirrors.size >= maxMirrors) {
        const oldest = this.#mirrors.keys().next().value;
        if (oldest !== undefined) this.#mirrors.delete(oldest);
      }
    } else {
      // Most recently asked last: the map's order is the eviction order.
      this.#mirrors.delete(snapshot.id);
    }
    this.#mirrors.set(snapshot.id, mirror);
    await this.#catchUp(mirror);
    return mirror.record;
  }

  async #catchUp(mirror: Mirror): Promise<void> {
    const { record } = mirror;
    const start = mirror.lastEntryId === "-" ? "-" : `(${mirror.lastEntryId}`;
    const entries = await this.#redis.xrange(this.#names.deltaStream(record.id), start, "+");
    for (const [entryId, fields] of entries) {
      mirror.lastEntryId = entryId;
      const envelope = decodeEnvelope(fields[1] ?? "");
      if (envelope === undefined || !("s" in envelope)) continue;
      // Deltas in order only; the end is read from the owner's final record.
      if (envelope.s !== record.chunks.length) continue;
      const message = openReply(this.#keyRing, envelope);
      if (message.kind !== "delta" || message.seq !== envelope.s) continue;
      const chunk = deltaChunkOf(message);
      record.addChunk(mirror.encryptOutput ? encryptChunk(mirror.outputRing, chunk) : chunk);
    }
    if (entries.length > 0) record.markStarted();
  }
}
