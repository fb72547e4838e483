/**
 * The orchestrator's public surface: the core, its front ends (the local API, the RunPod worker)
 * and the reference client.
 */
export * from "./client/index.js";
export { JobRecord } from "./jobs/job-record.js";
export { JobService, type SubmitOptions } from "./jobs/job-service.js";
export { createLocalApi, type LocalApiOptions } from "./local-api/local-api.js";
export { Orchestrator, type OrchestratorOptions } from "./orchestrator.js";
export { defaultModelName, OpenAiProxy, type OpenAiProxyOptions } from "./proxy/openai-proxy.js";
export { RunpodWorker, type RunpodWorkerOptions } from "./runpod/runpod-worker.js";
