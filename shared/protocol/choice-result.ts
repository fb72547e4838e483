import { z } from "zod";
import { finishReasonSchema } from "./finish-reason.js";

/**
 * How one choice of a job with `n` > 1 ended: its index, why, and the tokens it generated. The
 * thread's result, the gpu-worker's `done` reply and (snake_case) the final chunk carry one per
 * choice, in index order.
 */
export const choiceResultSchema = z.strictObject({
  index: z.number().int().min(0),
  finishReason: finishReasonSchema,
  completionTokens: z.number().int().min(0),
});

export type ChoiceResult = z.infer<typeof choiceResultSchema>;
