import type { Queue } from "bullmq";
import { jobMetadataSchema } from "../../shared/protocol/index.js";
import type { RedisClient } from "../../shared/redis/index.js";
import type { GpuWorkerInfo } from "../../shared/registry/model-registry.js";
import type { ModelRegistryReader } from "../registry/model-registry-reader.js";
import { countCancelledJobs } from "./cancelled-jobs.js";
import type { ClientOverview } from "./client-overview.js";

/** The window of "recent tokens/s": generated tokens of jobs finished within it, per second. */
const recentWindowMs = 60_000;
/** At most this many of the latest completed jobs are read for the recent rate. */
const recentJobsRead = 200;

/** One model's line of the dashboard's overview. */
export interface ModelOverview {
  model: string;
  /** `ready`, `loading`, `cold` or `unavailable`, by the registry. */
  state: string;
  /** The state across the pool, as shown: `ready on 2`, `loading`, `cold (1 can load it)`. */
  stateText: string;
  /** Live gpu-workers serving it (loading or ready). */
  workers: number;
  waiting: number;
  active: number;
  /** Jobs that ran to their end, still kept (`DASHBOARD_RETENTION`); cancelled ones not included. */
  completed: number;
  failed: number;
  /** Jobs stopped while they ran, still kept: completed in BullMQ, `finishReason` "cancelled". */
  cancelled: number;
  /** Generated tokens per second over the last minute, from the kept jobs' metadata. */
  tokensPerSecond: number;
}

/** Reads each model's line: registry state, queue counts and recent throughput. */
export async function readOverview(
  queues: ReadonlyMap<string, Queue>,
  registry: ModelRegistryReader,
  redis: RedisClient,
  now = Date.now(),
): Promise<ModelOverview[]> {
  const serving = await registry.read([...queues.keys()]);
  const lines: ModelOverview[] = [];
  for (const [model, queue] of queues) {
    const counts = await queue.getJobCounts(
      "waiting",
      "prioritized",
      "active",
      "completed",
      "failed",
    );
    const cancelled = await countCancelledJobs(redis, queue);
    let tokens = 0;
    for (const job of await queue.getJobs(["completed"], 0, recentJobsRead - 1)) {
      if (job?.finishedOn === undefined || now - job.finishedOn > recentWindowMs) continue;
      const metadata = jobMetadataSchema.safeParse(job.data);
      if (metadata.success) tokens += metadata.data.completionTokens ?? 0;
    }
    const served = serving.get(model);
    const state = served?.state ?? "unavailable";
    lines.push({
      model,
      state,
      stateText:
        state === "ready"
          ? `ready on ${served?.ready ?? 0}`
          : state === "cold"
            ? `cold (${served?.cold ?? 0} can load it)`
            : state,
      workers: served?.workers ?? 0,
      waiting: (counts.waiting ?? 0) + (counts.prioritized ?? 0),
      active: counts.active ?? 0,
      completed: Math.max(0, (counts.completed ?? 0) - cancelled),
      failed: counts.failed ?? 0,
      cancelled,
      tokensPerSecond: tokens / (recentWindowMs / 1000),
    });
  }
  return lines;
}

const escapes: Record<string, string> = {
  "&": "&amp;",
  "<": "&lt;",
  ">": "&gt;",
  '"': "&quot;",
  "'": "&#39;",
};

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (char) => escapes[char] ?? char);
}

/** Shown while Redis knows no model under the dashboard's prefix. */
const noModelsText =
  "No model in Redis under this REDIS_PREFIX yet: no gpu-worker has registered one and no queue exists (is REDIS_PREFIX the pool's?)";

/**
 * The overview as an HTML section, rendered with the page; a script from this server
 * (`overview.js`) refreshes it every few seconds.
 */
export function renderOverview(
  lines: readonly ModelOverview[] | undefined,
  gpuWorkers?: ReadonlyMap<string, Omit<GpuWorkerInfo, "expiresAt">>,
  clients?: readonly ClientOverview[],
): string {
  const mib = (bytes: number) => (bytes / 1024 / 1024).toFixed(0);
  const workerRows = [...(gpuWorkers ?? [])]
    .map(
      ([id, info]) =>
        `<tr><td>${escapeHtml(id.slice(0, 8))}</td><td>${escapeHtml(info.device)}</td>` +
        `<td>${mib(info.usedBytes)} / ${mib(info.budgetBytes)}</td><td>${escapeHtml(
          Object.entries(info.models)
            .map(([model, state]) => `${model}: ${state}`)
            .join(", "),
        )}</td></tr>`,
    )
    .join("");
  const workersTable =
    workerRows === ""
      ? ""
      : `<h2>GPU workers</h2><table class="llmpool-workers"><thead><tr><th>gpu-worker</th><th>device</th><th>memory used / budget (MiB)</th><th>models</th></tr></thead><tbody>${workerRows}</tbody></table>`;
  const clientRows = (clients ?? [])
    .map(
      (line) =>
        `<tr data-client="${escapeHtml(line.client)}"><td>${escapeHtml(line.client)}</td>` +
        `<td>${line.waiting}</td><td>${line.active}</td><td>${line.completed}</td>` +
        `<td>${line.failed}</td><td>${line.tokens}</td></tr>`,
    )
    .join("");
  const clientsTable =
    clientRows === ""
      ? ""
      : `<h2>Clients</h2><table class="llmpool-clients"><thead><tr><th>client</th><th>waiting</th><th>active</th><th>completed (kept)</th><th>failed (kept)</th><th>tokens generated (kept)</th></tr></thead><tbody>${clientRows}</tbody></table>`;
  const rows =
    lines === undefined
      ? '<tr><td colspan="9">Redis does not answer: no overview</td></tr>'
      : lines.length === 0
        ? `<tr><td colspan="9">${noModelsText}</td></tr>`
        : lines
            .map(
              (line) =>
                `<tr data-model="${escapeHtml(line.model)}"><td>${escapeHtml(line.model)}</td>` +
                `<td class="state-${escapeHtml(line.state)}">${escapeHtml(line.stateText)}</td>` +
                `<td>${line.workers}</td><td>${line.waiting}</td><td>${line.active}</td>` +
                `<td>${line.completed}</td><td>${line.failed}</td><td>${line.cancelled}</td>` +
                `<td>${line.tokensPerSecond.toFixed(1)}</td></tr>`,
            )
            .join("");
  return `<section id="llmpool-overview"><style>
#llmpool-overview{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;background:var(--background,#f3f5f7);color:var(--foreground,#20262c);margin-left:var(--menu-width,0px);padding:calc(var(--header-height,0px) + 1rem) var(--body-padding,1rem) 0}
#llmpool-overview h2{font-size:1rem;margin:0 0 .5rem}
#llmpool-overview table{border-collapse:collapse;font-size:.85rem;background:var(--card,#fff);border:1px solid var(--border,#e2e7ec)}
#llmpool-overview th,#llmpool-overview td{padding:.25rem .75rem;text-align:right;border-bottom:1px solid #e3e7eb}
#llmpool-overview th:first-child,#llmpool-overview td:first-child,#llmpool-overview td:nth-child(2){text-align:left}
#llmpool-overview .state-ready{color:#137333}#llmpool-overview .state-loading{color:#b06000}#llmpool-overview .state-cold{color:#1a73e8}#llmpool-overview .state-unavailable{color:#c5221f}
</style><h2>Models</h2><table><thead><tr><th>model</th><th>state</th><th>gpu-workers</th><th>waiting</th><th>active</th><th>completed (kept)</th><th>failed (kept)</th><th>cancelled (kept)</th><th>tokens/s (last minute)</th></tr></thead><tbody>${rows}</tbody></table>${workersTable}${clientsTable}<script src="overview.js" defer></script></section>`;
}
