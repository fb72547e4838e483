import { z } from "zod";

/**
 * A job's status as every API shows it (RunPod's names): queued, running, then one terminal
 * status. The one definition: schemas, records and clients use these.
 *
 * ```
 * IN_QUEUE ─► IN_PROGRESS ─► COMPLETED | FAILED | CANCELLED | TIMED_OUT
 *     └──────────────────────► FAILED | CANCELLED | TIMED_OUT
 * ```
 */
export const jobStatuses = [
  "IN_QUEUE",
  "IN_PROGRESS",
  "COMPLETED",
  "FAILED",
  "CANCELLED",
  "TIMED_OUT",
] as const;

export type JobStatus = (typeof jobStatuses)[number];

export const jobStatusSchema = z.enum(jobStatuses);

/** The statuses after which nothing about a job changes. */
export const terminalStatuses: ReadonlySet<string> = new Set<JobStatus>([
  "COMPLETED",
  "FAILED",
  "CANCELLED",
  "TIMED_OUT",
]);

export function isTerminalStatus(status: string): boolean {
  return terminalStatuses.has(status);
}
