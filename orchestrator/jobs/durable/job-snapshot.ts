import { z } from "zod";
import { errorInfoSchema } from "../../../shared/errors/index.js";
import { openAiAnswerShapeSchema } from "../../../shared/openai/index.js";
import { jobStatusSchema, outputChunkSchema } from "../../../shared/protocol/index.js";
import { JobRecord } from "../job-record.js";

/**
 * What Redis holds of one accepted job (sealed with the service key, so only ciphertext is
 * stored): written when the job is accepted and again when it ends, so that a restarted
 * orchestrator, or any other on the same Redis, can answer for it. Times are epoch milliseconds.
 */
export const jobSnapshotSchema = z.object({
  v: z.literal(1),
  id: z.string(),
  /** The orchestrator that tracks the job (whose reply channel its gpu-worker writes to). */
  owner: z.string(),
  status: jobStatusSchema,
  model: z.string().optional(),
  /** The named client that sent it (its outputs are sealed to it, only it may read them). */
  client: z.string().optional(),
  acceptedAt: z.number(),
  /** When the job times out (`JOB_TIMEOUT_MS` or the submit's own limit after acceptance). */
  deadline: z.number(),
  startedAt: z.number().optional(),
  endedAt: z.number().optional(),
  encryptOutput: z.boolean(),
  openai: openAiAnswerShapeSchema.optional(),
  error: errorInfoSchema.optional(),
  /** The chunks, once the job ended (plaintext or encrypted, as the caller gets them). */
  chunks: z.array(outputChunkSchema).optional(),
  generationEnded: z.boolean().optional(),
  /** How many chunks `/stream` polls had taken when this was written. */
  streamed: z.number().optional(),
});

export type JobSnapshot = z.infer<typeof jobSnapshotSchema>;

/** What a snapshot needs beyond the record itself. */
export interface SnapshotExtras {
  owner: string;
  deadline: number;
  encryptOutput: boolean;
}

/** The snapshot of a record now: with its chunks once it is terminal. */
export function snapshotOf(record: JobRecord, extras: SnapshotExtras): JobSnapshot {
  const snapshot: JobSnapshot = {
    v: 1,
    id: record.id,
    owner: extras.owner,
    status: record.status,
    acceptedAt: record.acceptedAtDate,
    deadline: extras.deadline,
    encryptOutput: extras.encryptOutput,
  };
  if (record.model !== undefined) snapshot.model = record.model;
  if (record.client !== undefined) snapshot.client = record.client;
  if (record.openai !== undefined) snapshot.openai = record.openai;
  const error = record.error;
  if (error !== undefined) snapshot.error = { code: error.code, message: error.message };
  const startedAt = toEpoch(record, record.startedAt);
  if (startedAt !== undefined) snapshot.startedAt = startedAt;
  const endedAt = toEpoch(record, record.endedAt);
  if (endedAt !== undefined) snapshot.endedAt = endedAt;
  if (record.terminal) {
    snapshot.chunks = record.chunks.map((chunk) => ({ ...chunk }));
    snapshot.generationEnded = record.generationEnded;
    snapshot.streamed = record.streamedCount;
  }
  return snapshot;
}

/** A record rebuilt from a snapshot, on this process's clock. */
export function recordOf(
  snapshot: JobSnapshot,
  onEnd?: (record: JobRecord) => void,
  now = Date.now(),
): JobRecord {
  const clock = performance.now();
  const local = (epoch: number | undefined) =>
    epoch === undefined ? undefined : clock - (now - epoch);
  const record = new JobRecord(snapshot.id, {
    acceptedAtDate: snapshot.acceptedAt,
    acceptedAt: local(snapshot.acceptedAt),
    ...(onEnd === undefined ? {} : { onEnd }),
  });
  record.model = snapshot.model;
  record.client = snapshot.client;
  record.openai = snapshot.openai;
  record.restore({
    status: snapshot.status,
    chunks: snapshot.chunks ?? [],
    generationEnded: snapshot.generationEnded ?? false,
    error: snapshot.error,
    startedAt: local(snapshot.startedAt),
    endedAt: local(snapshot.endedAt),
    streamed: snapshot.streamed ?? 0,
  });
  return record;
}

function toEpoch(record: JobRecord, at: number | undefined): number | undefined {
  return at === undefined
    ? undefined
    : Math.round(record.acceptedAtDate + (at - record.acceptedAt));
}
