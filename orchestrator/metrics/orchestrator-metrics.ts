import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from "prom-client";
import { messageOf } from "../../shared/errors/index.js";
import type { Logger } from "../../shared/log.js";
import {
  anonymousClientLabel,
  latencyBuckets,
  metricPrefix,
  noModelLabel,
} from "../../shared/metrics/metric-names.js";
import { redisAnswerMs, redisAnswerWithin } from "../../shared/process/deadline.js";
import type { FinalChunk } from "../../shared/protocol/index.js";
import type { JobRecord } from "../jobs/job-record.js";
import type { ModelQueues } from "../jobs/model-queues.js";
import type { ModelRegistryReader } from "../registry/model-registry-reader.js";

export interface OrchestratorMetricsOptions {
  /** The configured models: the only values the `model` label takes (besides `none`). */
  models: readonly string[];
  queues: ModelQueues;
  registry: ModelRegistryReader;
  /**
   * `CLIENT_METRICS_LABEL` (default true): the per-client counters carry a `client` label (a
   * name from the keys file, or `anonymous`); false: they count all clients together.
   */
  clientLabel?: boolean;
  log: Logger;
}

/**
 * The orchestrator's Prometheus metrics: per-model request latencies (vLLM's names, our prefix),
 * request and error counts, token totals, and, read from Redis at scrape time, queue depths and
 * the live gpu-workers of each model. Each orchestrator exports the jobs it accepted.
 */
export class OrchestratorMetrics {
  readonly registry = new Registry();
  readonly #models: ReadonlySet<string>;
  readonly #ttft: Histogram<"model">;
  readonly #queueTime: Histogram<"model">;
  readonly #e2e: Histogram<"model">;
  readonly #interToken: Histogram<"model">;
  readonly #requests: Counter<"model" | "status">;
  readonly #errors: Counter<"model" | "code">;
  readonly #recovered: Counter<"model" | "how">;
  readonly #promptTokens: Counter<"model">;
  readonly #generationTokens: Counter<"model">;
  readonly #cachedTokens: Counter<"model">;
  readonly #clientLabel: boolean;
  readonly #clientJobs: Counter<"client" | "status">;
  readonly #clientTokens: Counter<"client" | "kind">;

  constructor(options: OrchestratorMetricsOptions) {
    const { queues, registry, log } = options;
    const registers = [this.registry];
    const models = [...options.models];
    this.#models = new Set(models);
    collectDefaultMetrics({ register: this.registry });
    this.#clientLabel = options.clientLabel ?? true;
    const clientLabels = this.#clientLabel ? (["client"] as const) : ([] as const);
    this.#clientJobs = new Counter({
      name: `${metricPrefix}client_requests_total`,
      help: "Requests ended, by client (a name of CLIENT_KEYS_FILE, or anonymous) and final status.",
      labelNames: [...clientLabels, "status"],
      registers,
    });
    this.#clientTokens = new Counter({
      name: `${metricPrefix}client_tokens_total`,
      help: "Tokens of completed requests, by client and kind (prompt, generation).",
      labelNames: [...clientLabels, "kind"],
      registers,
    });
    const histogram = (name: string, help: string, buckets: readonly number[]) =>
      new Histogram({
        name: `${metricPrefix}${name}`,
        help,
        labelNames: ["model"],
        buckets: [...buckets],
        registers,
      });
    this.#ttft = histogram(
      "time_to_first_token_seconds",
      "Seconds from acceptance of a completed request to its first text delta.",
      latencyBuckets.timeToFirstToken,
    );
    this.#queueTime = histogram(
      "request_queue_time_seconds",
      "Seconds a completed request spent before a gpu-worker started it (acceptance to start).",
      latencyBuckets.queueTime,
    );
    this.#e2e = histogram(
      "e2e_request_latency_seconds",
      "Seconds from acceptance of a completed request to its final chunk.",
      latencyBuckets.e2eLatency,
    );
    this.#interToken = histogram(
      "inter_token_latency_seconds",
      "Mean seconds per generated token after the first, one observation per completed request " +
        "with at least 2 generated tokens: (e2e - ttft) / (generation tokens - 1).",
      latencyBuckets.interToken,
    );
    this.#requests = new Counter({
      name: `${metricPrefix}requests_total`,
      help: "Requests ended, by model and final status (completed, failed, cancelled, timed_out).",
      labelNames: ["model", "status"],
      registers,
    });
    this.#errors = new Counter({
      name: `${metricPrefix}request_errors_total`,
      help: "Requests that ended with an error, by model and error code.",
      labelNames: ["model", "code"],
      registers,
    });
    this.#recovered = new Counter({
      name: `${metricPrefix}requests_recovered_total`,
      help:
        "Requests recovered from a fault, by model and how: requeued (run again after their " +
        "gpu-worker was lost before replying), continued (went on on another gpu-worker from the " +
        "text delivered) or adopted (taken over from an orchestrator that is gone).",
      labelNames: ["model", "how"],
      registers,
    });
    const tokens = (name: string, help: string) =>
      new Counter({ name: `${metricPrefix}${name}`, help, labelNames: ["model"], registers });
    this.#promptTokens = tokens("prompt_tokens_total", "Prompt tokens of completed requests.");
    this.#generationTokens = tokens(
      "generation_tokens_total",
      "Generated tokens of completed requests.",
    );
    this.#cachedTokens = tokens(
      "prompt_cached_tokens_total",
      "Prompt tokens of completed requests taken from the prompt cache (not evaluated again).",
    );
    new Gauge({
      name: `${metricPrefix}queue_jobs`,
      help:
        "Jobs in each model's queue by state (waiting, active, delayed; completed and failed: " +
        "finished jobs kept for the dashboard, DASHBOARD_RETENTION).",
      labelNames: ["model", "state"],
      registers,
      async collect() {
        this.reset();
        try {
          const counts = await redisAnswerWithin(queues.counts(), redisAnswerMs);
          for (const [model, byState] of counts) {
            for (const [state, count] of Object.entries(byState)) this.set({ model, state }, count);
          }
        } catch (error) {
          log.warn("metrics: queue counts unavailable", { error: messageOf(error) });
        }
      },
    });
    new Gauge({
      name: `${metricPrefix}gpu_workers`,
      help: "Live gpu-workers with each model, by state (ready, loading; cold: can load it on demand), from the registry.",
      labelNames: ["model", "state"],
      registers,
      async collect() {
        this.reset();
        try {
          const serving = await redisAnswerWithin(registry.read(models), redisAnswerMs);
          for (const [model, served] of serving) {
            this.set({ model, state: "ready" }, served.ready);
            this.set({ model, state: "loading" }, served.workers - served.ready);
            this.set({ model, state: "cold" }, served.cold ?? 0);
          }
        } catch (error) {
          log.warn("metrics: the model registry is unavailable", { error: messageOf(error) });
        }
      },
    });
    for (const model of models) {
      // Zero series from the start, so rates and absent() work before the first job.
      this.#requests.inc({ model, status: "completed" }, 0);
      for (const counter of [this.#promptTokens, this.#generationTokens, this.#cachedTokens]) {
        counter.inc({ model }, 0);
      }
    }
  }

  /** A job was recovered from a fault: run again, or adopted from an orchestrator that is gone. */
  /**
   * Reads what the job service holds at each scrape: `llmpool_jobs_held{holder}` (all 0 when no
   * job runs) and `llmpool_job_records` (records kept for `/status`, within retention and cap).
   */
  observe(jobs: { readonly jobsHeld: Record<string, number>; readonly recordCount: number }) {
    const registers = [this.registry];
    new Gauge({
      name: `${metricPrefix}jobs_held`,
      help: "Jobs this orchestrator holds state for now, by holder: all 0 when no job runs.",
      labelNames: ["holder"],
      registers,
      collect() {
        for (const [holder, count] of Object.entries(jobs.jobsHeld)) this.set({ holder }, count);
      },
    });
    new Gauge({
      name: `${metricPrefix}job_records`,
      help: "Job records this orchestrator keeps for /status: unfinished, and finished within RESULT_RETENTION_MS and the cap.",
      registers,
      collect() {
        this.set(jobs.recordCount);
      },
    });
  }

  jobRecovered(model: string, how: "requeued" | "continued" | "adopted"): void {
    this.#recovered.inc({ model: this.#label(model), how });
  }

  /** A job ended (once per job, whatever its end). */
  jobEnded(record: JobRecord): void {
    const model = this.#label(record.model);
    this.#requests.inc({ model, status: record.status.toLowerCase() });
    if (record.error !== undefined) this.#errors.inc({ model, code: record.error.code });
    // A job refused before admission has no client: counted as the anonymous one's.
    this.#clientJobs.inc({ ...this.#client(record.client), status: record.status.toLowerCase() });
  }

  /** A job completed with this final chunk: its latencies and token counts. */
  jobCompleted(model: string, final: FinalChunk, client?: string): void {
    const labels = { model: this.#label(model) };
    const { timings, usage } = final;
    this.#ttft.observe(labels, timings.ttft_ms / 1000);
    this.#queueTime.observe(labels, timings.queue_ms / 1000);
    this.#e2e.observe(labels, timings.total_ms / 1000);
    if (usage.completion_tokens >= 2) {
      const perToken = (timings.total_ms - timings.ttft_ms) / (usage.completion_tokens - 1);
      this.#interToken.observe(labels, Math.max(0, perToken) / 1000);
    }
    this.#promptTokens.inc(labels, usage.prompt_tokens);
    this.#generationTokens.inc(labels, usage.completion_tokens);
    this.#cachedTokens.inc(labels, usage.prompt_tokens_details?.cached_tokens ?? 0);
    const clientLabels = this.#client(client);
    this.#clientTokens.inc({ ...clientLabels, kind: "prompt" }, usage.prompt_tokens);
    this.#clientTokens.inc({ ...clientLabels, kind: "generation" }, usage.completion_tokens);
  }

  /** The `client` label (a name admission took from the keys file), unless it is turned off. */
  #client(client: string | undefined): { client?: string } {
    return this.#clientLabel ? { client: client ?? anonymousClientLabel } : {};
  }

  /** Only configured model names become labels; anything else (never seen in practice) is `none`. */
  #label(model: string | undefined): string {
    return model !== undefined && this.#models.has(model) ? model : noModelLabel;
  }
}
