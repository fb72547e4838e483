import { ModelLoadError, messageOf } from "../../shared/errors/index.js";
import type { ThreadSpares } from "../pool/thread-spares.js";
import type { EstimateReport, EstimateRequest, EstimateTask } from "./estimate-messages.js";

/**
 * Asks node-llama-cpp what each model needs on this machine's backend and how much memory that
 * backend has, on a spare model thread (`spares`): the backend it started is the one the models
 * load on, and no thread starts or stops for the plan alone. (The plan had a short-lived thread of
 * its own, which started a backend, disposed it and exited while the first spare started its own;
 * three gpu-worker starts in test runs hung in that window, their event loop blocked.) Loads no
 * weights; rejects with `MODEL_LOAD_FAILED` when a file cannot be read as a GGUF model.
 */
export async function estimateMemory(
  request: EstimateRequest,
  spares: ThreadSpares,
): Promise<EstimateReport> {
  const task: EstimateTask = { kind: "estimate", request };
  try {
    return (await spares.runOnSpare(task)) as EstimateReport;
  } catch (error) {
    throw new ModelLoadError(`the memory plan could not read the models: ${messageOf(error)}`, {
      cause: error,
    });
  }
}
