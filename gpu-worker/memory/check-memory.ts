import type { Config } from "../../shared/config/index.js";
import { InsufficientMemoryError } from "../../shared/errors/index.js";
import type { Logger } from "../../shared/log.js";
import type { ResolvedModel } from "../models/resolve-models.js";
import { estimateMemory } from "./estimate-memory.js";
import { formatBytes, formatPlanTable, type MemoryPlan, planMemory } from "./memory-plan.js";

/**
 * Plans memory for the models before any is loaded and logs the plan as a table. When the models
 * do not fit the budget, logs the table as errors and throws `INSUFFICIENT_MEMORY`, so the
 * gpu-worker exits having loaded nothing.
 */
export async function checkMemory(
  models: readonly ResolvedModel[],
  config: Config,
  log: Logger,
): Promise<MemoryPlan> {
  const report = await estimateMemory({
    gpu: config.gpu,
    models: models.map((model) => ({
      name: model.name,
      path: model.path,
      contextSize: model.settings.contextSize,
      sequences: model.settings.sequences,
    })),
  });
  const plan = planMemory(report, models, {
    utilization: config.gpuMemoryUtilization,
    budgetMb: config.memoryBudgetMb,
  });
  const write = plan.fits ? log.info : log.error;
  write(plan.fits ? "memory plan" : "memory plan: the models do not fit", {
    device: plan.device,
    totalBytes: plan.totalBytes,
    budgetBytes: plan.budgetBytes,
    freeBytes: report.freeBytes,
  });
  for (const line of formatPlanTable(plan)) write(`  ${line}`);
  if (!plan.fits) {
    throw new InsufficientMemoryError(
      `the models need ${formatBytes(plan.totalBytes)} but the budget is ${formatBytes(plan.budgetBytes)} ` +
        `(${plan.budgetSource}); nothing was loaded. Lower context, sequences or threads, serve fewer ` +
        "models, or raise GPU_MEMORY_UTILIZATION (or MEMORY_BUDGET_MB)",
    );
  }
  return plan;
}
