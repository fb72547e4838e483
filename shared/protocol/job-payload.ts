import { z } from "zod";

/** The data of a BullMQ job on a model queue. The task itself is sealed (see `sealed.ts`). */
export const jobPayloadSchema = z.strictObject({
  v: z.literal(1),
  /** The pub/sub channel of the orchestrator waiting for this job's replies. */
  replyTo: z.string().min(1),
  /** The sealed {@link GenerationTask}. */
  task: z.string().min(1),
});

export type JobPayload = z.infer<typeof jobPayloadSchema>;

/**
 * What a finished job keeps as its BullMQ return value: the sealed {@link JobResult}. BullMQ keeps
 * it in the queue's events stream long after the job, so it holds no text: the text reaches the
 * orchestrator through the replies only.
 */
export interface JobReturnValue {
  result: string;
}

export const jobResultSchema = z.strictObject({
  finishReason: z.enum(["stop", "length", "cancelled"]),
  promptTokens: z.number().int().min(0),
  cachedTokens: z.number().int().min(0),
  completionTokens: z.number().int().min(0),
  runMs: z.number().min(0),
});

/** How one job ended: why, its token counts and how long it ran (never its text). */
export type JobResult = z.infer<typeof jobResultSchema>;
