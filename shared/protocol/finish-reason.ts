import { z } from "zod";

/**
 * Why a job's generation ended: `stop` (end of text or a stop string), `length` (`max_tokens` or
 * the context filled) or `cancelled`. The one definition: the thread's result, the gpu-worker's
 * reply and metadata, and the caller's final chunk all use it.
 */
export const finishReasons = ["stop", "length", "cancelled"] as const;

export type FinishReason = (typeof finishReasons)[number];

export const finishReasonSchema = z.enum(finishReasons);
