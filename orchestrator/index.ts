/**
 * The orchestrator's public surface: the core and its front ends (the local API, the RunPod
 * worker). The reference client and the OpenAI proxy run on the caller's machine: `client/`.
 */
export { JobRecord } from "./jobs/job-record.js";
export { JobService, type SubmitOptions } from "./jobs/job-service.js";
export { createLocalApi, type LocalApiOptions } from "./local-api/local-api.js";
export { Orchestrator, type OrchestratorOptions } from "./orchestrator.js";
export { RunpodWorker, type RunpodWorkerOptions } from "./runpod/runpod-worker.js";
