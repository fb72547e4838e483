import { z } from "zod";

/**
 * Why a job's generation ended: `stop` (end of text or a stop string), `length` (`max_tokens` or
 * the context filled), `cancelled`, or `tool_calls` (the reply ends with function calls). The one definition: the thread's result, the gpu-worker's
 * reply and metadata, and the caller's final chunk all use it.
 */
export const finishReasons = ["stop", "length", "cancelled", "tool_calls"] as const;

export type FinishReason = (typeof finishReasons)[number];

export const finishReasonSchema = z.enum(finishReasons);
