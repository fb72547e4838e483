import { z } from "zod";

/**
 * Orchestrator → gpu-workers messages on the control channel. Every gpu-worker receives them and
 * acts on the jobs it holds. Nothing here is secret: job ids are random.
 */
export const controlMessageSchema = z.strictObject({
  type: z.literal("cancel"),
  jobId: z.string().min(1),
});

export type ControlMessage = z.infer<typeof controlMessageSchema>;
