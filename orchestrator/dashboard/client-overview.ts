import type { Queue } from "bullmq";
import { anonymousClientLabel } from "../../shared/metrics/metric-names.js";
import { jobMetadataSchema, jobPayloadSchema } from "../../shared/protocol/index.js";

/** At most this many jobs of each state of each queue are read for the clients' lines. */
const jobsReadPerState = 500;

/** One client's line of the dashboard: its jobs in the queues now (finished ones as kept). */
export interface ClientOverview {
  client: string;
  waiting: number;
  active: number;
  /** Kept finished jobs (`DASHBOARD_RETENTION`), cancelled ones included. */
  completed: number;
  failed: number;
  /** Generated tokens of its kept finished jobs. */
  tokens: number;
}

type State = "waiting" | "active" | "completed" | "failed";

/**
 * Jobs per client across the model queues, from each job's data: a waiting job's payload, a
 * taken one's metadata (both name the client in the clear; neither holds any text). Sorted by
 * name, the anonymous client first.
 */
export async function readClientOverview(
  queues: ReadonlyMap<string, Queue>,
): Promise<ClientOverview[]> {
  const lines = new Map<string, ClientOverview>();
  const lineOf = (client: string) => {
    let line = lines.get(client);
    if (line === undefined) {
      line = { client, waiting: 0, active: 0, completed: 0, failed: 0, tokens: 0 };
      lines.set(client, line);
    }
    return line;
  };
  for (const queue of queues.values()) {
    for (const state of ["waiting", "active", "completed", "failed"] as const satisfies State[]) {
      for (const job of await queue.getJobs([state], 0, jobsReadPerState - 1)) {
        if (job === undefined) continue;
        const metadata = jobMetadataSchema.safeParse(job.data);
        const payload = metadata.success ? undefined : jobPayloadSchema.safeParse(job.data);
        const client =
          (metadata.success ? metadata.data.client : payload?.data?.client) ?? anonymousClientLabel;
        const line = lineOf(client);
        line[state] += 1;
        if (metadata.success && state !== "waiting") {
          line.tokens += metadata.data.completionTokens ?? 0;
        }
      }
    }
  }
  return [...lines.values()].sort((a, b) =>
    a.client === anonymousClientLabel
      ? -1
      : b.client === anonymousClientLabel
        ? 1
        : a.client.localeCompare(b.client),
  );
}
