import { z } from "zod";
import { finishReasonSchema } from "./finish-reason.js";

/** The data of a BullMQ job on a model queue. The task itself is sealed (see `sealed.ts`). */
export const jobPayloadSchema = z.strictObject({
  v: z.literal(1),
  /** The pub/sub channel of the orchestrator waiting for this job's replies. */
  replyTo: z.string().min(1),
  /** The sealed {@link GenerationTask}. */
  task: z.string().min(1),
  /**
   * The job's id, when the BullMQ job's id differs from it (a job queued again after its
   * gpu-worker was lost; see `RedisNames.queueJobId`). Absent: the BullMQ job's id.
   */
  jobId: z.string().min(1).optional(),
  /** Which run of the job this is (absent: 1); replies carry it, see `reply-wire.ts`. */
  attempt: z.number().int().min(1).optional(),
  /**
   * A continuation (an attempt after one whose gpu-worker was lost once text had been delivered):
   * the sealed {@link ContinuationData}. Absent: the job starts from its prompt.
   */
  continuation: z.string().min(1).optional(),
  /**
   * The named client that sent it (`CLIENT_KEYS_FILE`; absent: the anonymous client), in the
   * clear: a name is not secret, and the dashboard counts jobs per client.
   */
  client: z.string().min(1).optional(),
});

export type JobPayload = z.infer<typeof jobPayloadSchema>;

/** Where a continuation starts: what the caller already got of the job. Sealed in the payload. */
export const continuationDataSchema = z.strictObject({
  /** The ids of the tokens whose text was delivered, in order. */
  tokens: z.array(z.number().int().min(0)).min(1),
  /** The sequence number of the next reply: the new attempt's first. */
  seq: z.number().int().min(1),
});

export type ContinuationData = z.infer<typeof continuationDataSchema>;

/**
 * What a finished job keeps as its BullMQ return value: its {@link JobResult}, metadata only, in
 * plain. BullMQ keeps it in the queue's events stream (and the dashboard shows it), so it holds no
 * text: the text reaches the orchestrator through the replies only.
 */
export type JobReturnValue = JobResult;

export const jobResultSchema = z.strictObject({
  finishReason: finishReasonSchema,
  promptTokens: z.number().int().min(0),
  cachedTokens: z.number().int().min(0),
  completionTokens: z.number().int().min(0),
  runMs: z.number().min(0),
});

/** How one job ended: why, its token counts and how long it ran (never its text). */
export type JobResult = z.infer<typeof jobResultSchema>;

/**
 * What a job's data becomes once a gpu-worker takes it: the sealed task is replaced by this, so a
 * finished job kept for the dashboard (`DASHBOARD_RETENTION`) holds metadata only, never request
 * data. Token counts and timings are not request data: they are shown in plain.
 */
export const jobMetadataSchema = z.strictObject({
  v: z.literal(1),
  model: z.string(),
  /**
   * `cancelled`: stopped while it ran (`finishReason` "cancelled"); BullMQ still counts it
   * completed, since it ended without an error.
   */
  status: z.enum(["active", "completed", "cancelled", "failed"]),
  /** The error code of a failed job. */
  code: z.string().optional(),
  /** The named client that sent it (absent: the anonymous client). */
  client: z.string().optional(),
  finishReason: finishReasonSchema.optional(),
  /** Milliseconds from queueing to the gpu-worker taking the job. */
  queueMs: z.number().min(0),
  /** Milliseconds the gpu-worker ran it (once finished). */
  runMs: z.number().min(0).optional(),
  promptTokens: z.number().int().min(0).optional(),
  cachedTokens: z.number().int().min(0).optional(),
  completionTokens: z.number().int().min(0).optional(),
});

export type JobMetadata = z.infer<typeof jobMetadataSchema>;
