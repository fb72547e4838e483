import type { RunpodConfig } from "../../shared/config/index.js";

/**
 * Fills a RunPod URL template: `$RUNPOD_POD_ID` becomes the worker id everywhere, `$ID` becomes
 * `id` (the worker id in job-take and ping URLs, the job id in output and stream URLs).
 */
export function fillTemplate(template: string, id: string, podId: string): string {
  return template.replaceAll("$RUNPOD_POD_ID", podId).replaceAll("$ID", id);
}

/**
 * Appends query parameters, with `?` when the URL has no query yet and `&` when it has one
 * (runpod-python always appends `&`, which only works because production templates carry a
 * query). `undefined` values are left out.
 */
export function withQuery(url: string, params: Record<string, string | undefined>): string {
  const query = Object.entries(params)
    .filter((entry): entry is [string, string] => entry[1] !== undefined)
    .map(([key, value]) => `${encodeURIComponent(key)}=${encodeURIComponent(value)}`)
    .join("&");
  if (query === "") return url;
  const hashAt = url.indexOf("#");
  const base = hashAt === -1 ? url : url.slice(0, hashAt);
  const hash = hashAt === -1 ? "" : url.slice(hashAt);
  const separator = !base.includes("?") ? "?" : base.endsWith("?") || base.endsWith("&") ? "" : "&";
  return `${base}${separator}${query}${hash}`;
}

const takePath = "/job-take/";

/** Every URL the job loop calls, built from the platform's templates (protocol §2–§6). */
export class WebhookUrls {
  readonly #config: RunpodConfig;

  constructor(config: RunpodConfig) {
    this.#config = config;
  }

  get podId(): string {
    return this.#config.podId;
  }

  /** Whether the take template has `/job-take/`, so batch take and the stop channel exist. */
  get canBatch(): boolean {
    return this.#config.getJobUrl.includes(takePath);
  }

  /** The job-take long poll for `batchSize` jobs (batch take when more than one). */
  take(batchSize: number, jobInProgress: boolean): string {
    const { getJobUrl, podId } = this.#config;
    const filled = fillTemplate(getJobUrl, podId, podId);
    const inProgress = jobInProgress ? "1" : "0";
    if (batchSize > 1 && this.canBatch) {
      return withQuery(filled.replace(takePath, "/job-take-batch/"), {
        batch_size: String(batchSize),
        job_in_progress: inProgress,
      });
    }
    return withQuery(filled, { job_in_progress: inProgress });
  }

  /** The job-stop long poll, or `undefined` when the take template cannot give one. */
  stop(): string | undefined {
    if (!this.canBatch) return undefined;
    const { getJobUrl, podId } = this.#config;
    return fillTemplate(getJobUrl, podId, podId).replace(takePath, "/job-stop/");
  }

  /** The heartbeat, with the held job ids (omitted when none). */
  ping(jobIds: readonly string[], version: string): string | undefined {
    const { pingUrl, podId } = this.#config;
    if (pingUrl === undefined) return undefined;
    return withQuery(fillTemplate(pingUrl, podId, podId), {
      job_id: jobIds.length > 0 ? jobIds.join(",") : undefined,
      runpod_version: version,
    });
  }

  /** Where a job's stream chunks go, or `undefined` when the platform gave no stream URL. */
  stream(jobId: string): string | undefined {
    const { postStreamUrl, podId } = this.#config;
    if (postStreamUrl === undefined) return undefined;
    return withQuery(fillTemplate(postStreamUrl, encodeURIComponent(jobId), podId), {
      isStream: "false",
    });
  }

  /** Where a job's final result goes. */
  output(jobId: string, isStream: boolean): string {
    const { postOutputUrl, podId } = this.#config;
    return withQuery(fillTemplate(postOutputUrl, encodeURIComponent(jobId), podId), {
      isStream: String(isStream),
    });
  }
}
