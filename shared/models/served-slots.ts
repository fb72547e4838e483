import type { Config } from "../config/index.js";
import { servedModels } from "./served-models.js";

/**
 * How many jobs the served models can run at once: for each model, its threads × sequences per
 * thread, summed. The RunPod job loop holds this many jobs by default (`MAX_CONCURRENCY`), so the
 * platform hands this worker as much as it can run and no more. Per-model settings will change
 * the terms of the sum, not its callers.
 */
export function servedSlots(config: Config): number {
  return servedModels(config).reduce((sum) => sum + config.modelThreads * config.modelSequences, 0);
}
