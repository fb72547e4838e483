/**
 * The Prometheus metrics of the pool: vLLM's names with our prefix and a `model` label, so boards
 * made for vLLM adapt by a search and replace. Labels are only ever configured model names,
 * statuses, error codes and states: never anything from a request.
 */
export const metricPrefix = "llmpool_";

/**
 * Histogram buckets in seconds, wide enough for both a CPU (seconds per token, minutes per job)
 * and a GPU (milliseconds per token).
 */
export const latencyBuckets = {
  timeToFirstToken: [
    0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10, 20, 40, 80, 160, 320,
  ],
  interToken: [
    0.001, 0.0025, 0.005, 0.01, 0.02, 0.03, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.5, 0.75, 1, 2.5, 5,
  ],
  queueTime: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 40, 80, 160, 320, 640],
  e2eLatency: [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 40, 60, 120, 240, 480, 960, 1920],
} as const;

/** The `client` label of the anonymous client's jobs (`ENCRYPTION_KEY`, no `client` named). */
export const anonymousClientLabel = "anonymous";

/** The `model` label of jobs refused before their model was known to be one we serve. */
export const noModelLabel = "none";
