import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from "prom-client";
import { latencyBuckets, metricPrefix } from "../../shared/metrics/metric-names.js";
import type { JobResult, ThreadStatsReport } from "../../shared/protocol/index.js";

/** What {@link WorkerMetrics.observe} reads at each scrape (the gpu-worker). */
export interface WorkerMemorySource {
  readonly jobsHeld: Readonly<Record<string, number>>;
  readonly threadStats: readonly ThreadStatsReport[];
}

/**
 * The gpu-worker's Prometheus metrics (on `METRICS_PORT`): what its model pools are doing right
 * now (sequences busy of those loaded) and what its jobs did. Request latencies as callers see
 * them are the orchestrator's; these are the gpu-worker's own view, under their own names so a
 * sum over both processes never counts a job twice.
 */
export class WorkerMetrics {
  readonly registry = new Registry();
  readonly #busy: Gauge<"model">;
  readonly #sequences: Gauge<"model">;
  readonly #jobs: Counter<"model" | "status">;
  readonly #run: Histogram<"model">;
  readonly #promptTokens: Counter<"model">;
  readonly #generationTokens: Counter<"model">;
  readonly #cachedTokens: Counter<"model">;
  readonly #loads: Counter<"model" | "reason">;
  readonly #evictions: Counter<"model" | "reason">;
  readonly #loadSeconds: Histogram<"model">;

  constructor() {
    const registers = [this.registry];
    collectDefaultMetrics({ register: this.registry });
    const gauge = (name: string, help: string) =>
      new Gauge({ name: `${metricPrefix}${name}`, help, labelNames: ["model"], registers });
    const counter = (name: string, help: string) =>
      new Counter({ name: `${metricPrefix}${name}`, help, labelNames: ["model"], registers });
    this.#busy = gauge(
      "sequences_busy",
      "Context sequences of the model generating a job now, on this gpu-worker.",
    );
    this.#sequences = gauge(
      "sequences",
      "Context sequences of the model loaded on this gpu-worker (threads x sequences): jobs it can run at once.",
    );
    this.#jobs = new Counter({
      name: `${metricPrefix}worker_jobs_total`,
      help: "Jobs this gpu-worker ran to their end, by model and status (completed, failed).",
      labelNames: ["model", "status"],
      registers,
    });
    this.#run = new Histogram({
      name: `${metricPrefix}worker_job_run_seconds`,
      help: "Seconds this gpu-worker spent on a completed job, from taking it to its last token.",
      labelNames: ["model"],
      buckets: [...latencyBuckets.e2eLatency],
      registers,
    });
    this.#promptTokens = counter(
      "worker_prompt_tokens_total",
      "Prompt tokens of jobs this gpu-worker completed.",
    );
    this.#generationTokens = counter(
      "worker_generation_tokens_total",
      "Tokens this gpu-worker generated for jobs it completed.",
    );
    this.#cachedTokens = counter(
      "worker_prompt_cached_tokens_total",
      "Prompt tokens of completed jobs taken from this gpu-worker's prompt cache.",
    );
    this.#loads = new Counter({
      name: `${metricPrefix}model_loads_total`,
      help: "Models this gpu-worker loaded, by model and reason (preload, demand, join).",
      labelNames: ["model", "reason"],
      registers,
    });
    this.#evictions = new Counter({
      name: `${metricPrefix}model_unloads_total`,
      help: "Models this gpu-worker unloaded, by model and reason (idle, pressure, swap, shutdown).",
      labelNames: ["model", "reason"],
      registers,
    });
    this.#loadSeconds = new Histogram({
      name: `${metricPrefix}model_load_seconds`,
      help: "Seconds a model took to load on this gpu-worker, from the start of its load to its first job taken.",
      labelNames: ["model"],
      buckets: [0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 40, 80, 160, 320],
      registers,
    });
  }

  /**
   * Reads what `source` holds at each scrape: its jobs by holder and its model threads' reports
   * (`llmpool_worker_jobs_held`, `llmpool_model_thread_*`).
   */
  observe(source: WorkerMemorySource): void {
    const registers = [this.registry];
    new Gauge({
      name: `${metricPrefix}worker_jobs_held`,
      help: "Jobs this gpu-worker holds state for now, by holder (cancellations, pools, threads): all 0 when idle.",
      labelNames: ["holder"],
      registers,
      collect() {
        for (const [holder, count] of Object.entries(source.jobsHeld)) {
          this.set({ holder }, count);
        }
      },
    });
    const threadGauge = (name: string, help: string, read: (stats: ThreadStatsReport) => number) =>
      new Gauge({
        name: `${metricPrefix}model_thread_${name}`,
        help,
        labelNames: ["model", "thread"],
        registers,
        collect() {
          this.reset();
          for (const stats of source.threadStats) {
            this.set({ model: stats.modelName, thread: String(stats.threadId) }, read(stats));
          }
        },
      });
    threadGauge(
      "heap_used_bytes",
      "V8 heap in use in the model thread, by its latest report (every 5 s).",
      (stats) => stats.heapUsedBytes,
    );
    threadGauge(
      "external_bytes",
      "Memory of the model thread's JavaScript objects held outside its heap.",
      (stats) => stats.externalBytes,
    );
    threadGauge(
      "tokens_held",
      "Tokens the model thread's context sequences hold (the prompt cache).",
      (stats) => stats.tokensHeld,
    );
    threadGauge(
      "context_state_bytes",
      "node-llama-cpp's context state of the model thread, in bytes.",
      (stats) => stats.contextStateBytes,
    );
  }

  /** A model's pool is loaded and takes jobs: `seconds` it took, `reason` it was loaded. */
  modelLoaded(model: string, sequences: number, reason: string, seconds: number): void {
    this.#loads.inc({ model, reason });
    this.#loadSeconds.observe({ model }, seconds);
    this.#sequences.set({ model }, sequences);
    this.#busy.set({ model }, 0);
    this.#jobs.inc({ model, status: "completed" }, 0);
    for (const counter of [this.#promptTokens, this.#generationTokens, this.#cachedTokens]) {
      counter.inc({ model }, 0);
    }
  }

  /** A model was unloaded (`reason`: idle, pressure, swap, shutdown): it no longer has sequences. */
  modelUnloaded(model: string, reason: string): void {
    this.#evictions.inc({ model, reason });
    this.#sequences.set({ model }, 0);
    this.#busy.set({ model }, 0);
  }

  /**
   * A job took a sequence (`count`: a job with that many choices takes as many); call the
   * returned function once when it gives them back.
   */
  sequenceTaken(model: string, count = 1): () => void {
    this.#busy.inc({ model }, count);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.#busy.dec({ model }, count);
    };
  }

  jobCompleted(model: string, result: JobResult): void {
    this.#jobs.inc({ model, status: "completed" });
    this.#run.observe({ model }, result.runMs / 1000);
    this.#promptTokens.inc({ model }, result.promptTokens);
    this.#generationTokens.inc({ model }, result.completionTokens);
    this.#cachedTokens.inc({ model }, result.cachedTokens);
  }

  jobFailed(model: string): void {
    this.#jobs.inc({ model, status: "failed" });
  }
}
