import { fileURLToPath } from "node:url";
import { Worker } from "node:worker_threads";
import { ModelLoadError } from "../../shared/errors/index.js";
import type { EstimateMessage, EstimateReport, EstimateRequest } from "./estimate-messages.js";

/** The estimator thread's module, with this module's own extension (`.js` compiled, `.ts` in tsx). */
function estimateThreadPath(): string {
  const extension = import.meta.url.endsWith(".ts") ? "ts" : "js";
  return fileURLToPath(new URL(`./estimate-thread.${extension}`, import.meta.url));
}

/**
 * Asks node-llama-cpp, in a short-lived thread, what each model needs on this machine's backend
 * and how much memory that backend has. Loads no weights; rejects with `MODEL_LOAD_FAILED` when a
 * file cannot be read as a GGUF model.
 */
export function estimateMemory(request: EstimateRequest): Promise<EstimateReport> {
  return new Promise((resolve, reject) => {
    const worker = new Worker(estimateThreadPath(), { workerData: request });
    let answered = false;
    worker.once("message", (message: EstimateMessage) => {
      answered = true;
      if (message.type === "estimate") resolve(message.report);
      else {
        reject(new ModelLoadError(`the memory plan could not read the models: ${message.message}`));
      }
    });
    worker.once("error", (error) => {
      answered = true;
      reject(new ModelLoadError("the memory plan's thread failed", { cause: error }));
    });
    worker.once("exit", (code) => {
      if (!answered) {
        reject(new ModelLoadError(`the memory plan's thread exited (${code}) without an answer`));
      }
    });
  });
}
