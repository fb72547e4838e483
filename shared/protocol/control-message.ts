import { z } from "zod";

/**
 * Orchestrator → gpu-workers messages on the control channel. Every gpu-worker receives them:
 * `cancel` stops a job where it runs; `load` says a job waits for a model no gpu-worker has loaded,
 * and one of those that can hold it loads it (see `gpu-worker/scheduling/`). Nothing here is
 * secret: job ids are random, model names are configuration.
 */
export const controlMessageSchema = z.discriminatedUnion("type", [
  z.strictObject({ type: z.literal("cancel"), jobId: z.string().min(1) }),
  z.strictObject({ type: z.literal("load"), model: z.string().min(1) }),
]);

export type ControlMessage = z.infer<typeof controlMessageSchema>;
