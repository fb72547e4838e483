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

/** What a finished job keeps as its BullMQ return value: the sealed {@link JobResult}. */
export interface JobReturnValue {
  result: string;
}

export const jobResultSchema = z.strictObject({
  text: z.string(),
  finishReason: z.enum(["stop", "length", "cancelled"]),
  promptTokens: z.number().int().min(0),
  completionTokens: z.number().int().min(0),
  runMs: z.number().min(0),
});

/** The whole result of one job: all its text, why it ended, and its token counts. */
export type JobResult = z.infer<typeof jobResultSchema>;
