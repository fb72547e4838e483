import { z } from "zod";

/**
 * The shapes the client reads from the RunPod API (local or hosted), checked before use. Objects
 * are loose: the hosted API adds fields (`delayTime`, `workerId`, ...) that the client ignores.
 */

/** `IN_QUEUE`, `IN_PROGRESS`, then one of {@link terminalStatuses}. Kept open: RunPod may add some. */
const jobStatus = z.string().min(1);

export { terminalStatuses } from "../../shared/protocol/index.js";

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

/** `GET /health`: the local API lists its models; the hosted API does not. */
export const healthResponseSchema = z.looseObject({
  models: z.array(z.looseObject({ name: z.string().min(1) })).optional(),
});

export type StreamResponse = z.infer<typeof streamResponseSchema>;
export type StatusResponse = z.infer<typeof statusResponseSchema>;
