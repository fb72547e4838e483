import type { Config } from "../../shared/config/index.js";
import { InsufficientMemoryError } from "../../shared/errors/index.js";
import type { Logger } from "../../shared/log.js";
import type { ResolvedModel } from "../models/resolve-models.js";
import type { ThreadSpares } from "../pool/thread-spares.js";
import { estimateMemory } from "./estimate-memory.js";
import { formatBytes, formatPlanTable, type MemoryPlan, planMemory } from "./memory-plan.js";

/**
 * Plans memory for the models before any is loaded and logs the plan as a table. When a model does
 * not fit the budget on its own, logs the table as errors and throws `INSUFFICIENT_MEMORY` naming
 * it, so the gpu-worker exits having loaded nothing. Models that fit one by one but not all at
 * once are fine: they are loaded on demand. The estimate runs on one of `spares` (started with
 * the backend the models will load on).
 */
export async function checkMemory(
  models: readonly ResolvedModel[],
  config: Config,
  spares: ThreadSpares,
  log: Logger,
): Promise<MemoryPlan> {
  const report = await estimateMemory(
    {
      models: models.map((model) => ({
        name: model.name,
        path: model.path,
        contextSize: model.settings.contextSize,
        sequences: model.settings.sequences,
        embeddings: model.settings.embeddings,
      })),
    },
    spares,
  );
  const plan = planMemory(report, models, {
    utilization: config.gpuMemoryUtilization,
    budgetMb: config.memoryBudgetMb,
  });
  const write = plan.fits ? log.info : log.error;
  write(plan.fits ? "memory plan" : "memory plan: a model does not fit the budget on its own", {
    device: plan.device,
    totalBytes: plan.totalBytes,
    budgetBytes: plan.budgetBytes,
    freeBytes: report.freeBytes,
  });
  for (const line of formatPlanTable(plan)) write(`  ${line}`);
  if (!plan.fits) {
    const needs = plan.tooLarge
      .map((model) => `"${model.name}" needs ${formatBytes(model.totalBytes)}`)
      .join(", ");
    throw new InsufficientMemoryError(
      `${needs} on its own, but the budget is ${formatBytes(plan.budgetBytes)} ` +
        `(${plan.budgetSource}); nothing was loaded. Lower its context, sequences or threads, ` +
        "or raise GPU_MEMORY_UTILIZATION (or MEMORY_BUDGET_MB)",
    );
  }
  return plan;
}
