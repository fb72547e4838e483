import { z } from "zod";
import type { StreamChunk } from "../../shared/protocol/index.js";

/**
 * The shapes the client reads from the RunPod API (local or hosted), checked before use. Objects
 * are loose: the hosted API adds fields (`delayTime`, `workerId`, ...) that the client ignores.
 */

/** `IN_QUEUE`, `IN_PROGRESS`, then one of {@link terminalStatuses}. Kept open: RunPod may add some. */
const jobStatus = z.string().min(1);

/** Job states after which nothing changes. */
export const terminalStatuses: ReadonlySet<string> = new Set([
  "COMPLETED",
  "FAILED",
  "CANCELLED",
  "TIMED_OUT",
]);

/** `POST /run` */
export const runResponseSchema = z.looseObject({
  id: z.string().min(1),
  status: jobStatus,
  error: z.unknown().optional(),
});

/** `GET /stream/{id}`: the chunks produced since the previous poll. */
export const streamResponseSchema = z.looseObject({
  status: jobStatus,
  stream: z.array(z.looseObject({ output: z.unknown() })).optional(),
  error: z.unknown().optional(),
});

/** `GET /status/{id}` and `POST /runsync`. */
export const statusResponseSchema = z.looseObject({
  id: z.string().min(1),
  status: jobStatus,
  output: z.unknown().optional(),
  error: z.unknown().optional(),
});

export type RunResponse = z.infer<typeof runResponseSchema>;
export type StreamResponse = z.infer<typeof streamResponseSchema>;
export type StatusResponse = z.infer<typeof statusResponseSchema>;

const count = z.number().int().min(0);
const ms = z.number().min(0);

/** One chunk of the stream contract (`shared/protocol/stream-chunk.ts`). */
export const streamChunkSchema: z.ZodType<StreamChunk> = z.union([
  z.looseObject({ seq: count, delta: z.string() }),
  z.looseObject({
    seq: count,
    done: z.literal(true),
    finish_reason: z.enum(["stop", "length", "cancelled"]),
    usage: z.looseObject({ prompt_tokens: count, completion_tokens: count }),
    timings: z.looseObject({ queue_ms: ms, ttft_ms: ms, total_ms: ms }),
  }),
]);
