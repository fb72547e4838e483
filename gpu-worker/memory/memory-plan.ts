import type { EffectiveModelSettings } from "../../shared/models/model-settings.js";
import type { EstimateReport } from "./estimate-messages.js";

/** One model's line of the plan. */
export interface PlannedModel {
  readonly name: string;
  readonly threads: number;
  readonly sequences: number;
  /** Tokens per sequence the threads create. */
  readonly contextSize: number;
  /** One copy of the weights. */
  readonly weightsBytes: number;
  /** Copies of the weights held: one per thread on a GPU; one per model on a CPU with mmap. */
  readonly weightCopies: number;
  /** One thread's context (`contextSize × sequences`): KV cache and compute buffers. */
  readonly contextBytes: number;
  /** One thread's embedding context (the `embeddings` setting); 0 without it. */
  readonly embeddingBytes: number;
  /** weights × copies + (context + embedding context) × threads. */
  readonly totalBytes: number;
  /**
   * The VRAM cap of each of this model's threads (node-llama-cpp's `setVramCap`): its need plus
   * its share of the budget left over, so the caps add up to the budget. GPU only.
   */
  readonly threadVramCapBytes: number | undefined;
}

export interface MemoryPlan {
  readonly device: "gpu" | "cpu";
  readonly backend: string;
  /** What all models may use together. */
  readonly budgetBytes: number;
  /** How the budget was set, for the table. */
  readonly budgetSource: string;
  /** What all models need together: more than the budget is fine, they load on demand. */
  readonly totalBytes: number;
  /** Whether every model fits the budget on its own (else the configuration is refused). */
  readonly fits: boolean;
  /** The models that do not fit the budget on their own. */
  readonly tooLarge: readonly PlannedModel[];
  readonly models: readonly PlannedModel[];
}

export interface PlanInput {
  readonly name: string;
  readonly settings: Pick<EffectiveModelSettings, "threads" | "sequences">;
}

export interface BudgetSettings {
  /** `GPU_MEMORY_UTILIZATION`: share of the device's memory the models may use. */
  readonly utilization: number;
  /** `MEMORY_BUDGET_MB`: an explicit budget in MiB, over the utilization. */
  readonly budgetMb: number | undefined;
}

const MiB = 1024 * 1024;

/**
 * The memory plan: what every thread of every model allocates, against one budget shared by the
 * models loaded at once. Each model thread holds its own llama.cpp instance with the model and one
 * context of `sequences` sequences, so a GPU holds the weights once per thread; on a CPU the
 * weights are memory-mapped and a model's threads share the file's pages, so they count once per
 * model. Each model must fit the budget on its own; together they need not (the scheduler loads
 * what fits and the rest on demand).
 */
export function planMemory(
  report: EstimateReport,
  models: readonly PlanInput[],
  budget: BudgetSettings,
): MemoryPlan {
  const budgetBytes =
    budget.budgetMb !== undefined
      ? budget.budgetMb * MiB
      : Math.floor(report.totalBytes * budget.utilization);
  const budgetSource =
    budget.budgetMb !== undefined
      ? "MEMORY_BUDGET_MB"
      : `GPU_MEMORY_UTILIZATION ${budget.utilization} of ${report.device === "gpu" ? "VRAM" : "RAM"}`;
  const lines = models.map((model) => {
    const estimate = report.models.find((candidate) => candidate.name === model.name);
    if (estimate === undefined) throw new Error(`no memory estimate for model ${model.name}`);
    const { threads, sequences } = model.settings;
    const weightCopies = report.device === "cpu" && report.mmap ? 1 : threads;
    const embeddingBytes = estimate.embeddingBytes ?? 0;
    const totalBytes =
      estimate.weightsBytes * weightCopies + (estimate.contextBytes + embeddingBytes) * threads;
    return { estimate, threads, sequences, weightCopies, embeddingBytes, totalBytes };
  });
  const totalBytes = lines.reduce((sum, line) => sum + line.totalBytes, 0);
  const planned = lines.map(
    ({
      estimate,
      threads,
      sequences,
      weightCopies,
      embeddingBytes,
      totalBytes: total,
    }): PlannedModel => ({
      name: estimate.name,
      threads,
      sequences,
      contextSize: estimate.contextSize,
      weightsBytes: estimate.weightsBytes,
      weightCopies,
      contextBytes: estimate.contextBytes,
      embeddingBytes,
      totalBytes: total,
      // A little over the thread's need, within the budget: its GPU layers are fitted under it.
      threadVramCapBytes:
        report.device === "gpu"
          ? Math.floor(
              (estimate.weightsBytes + estimate.contextBytes + embeddingBytes) *
                Math.max(1, Math.min(capHeadroom, budgetBytes / Math.max(1, total))),
            )
          : undefined,
    }),
  );
  const tooLarge = planned.filter((model) => model.totalBytes > budgetBytes);
  return {
    device: report.device,
    backend: report.backend,
    budgetBytes,
    budgetSource,
    totalBytes,
    fits: tooLarge.length === 0,
    tooLarge,
    models: planned,
  };
}

/** A thread's VRAM cap may exceed its estimated need by this factor (the estimate is not exact). */
const capHeadroom = 1.1;

/** The plan as a table for the log, one string per line. */
export function formatPlanTable(plan: MemoryPlan): string[] {
  const header = ["model", "weights", "KV cache", "threads", "total"];
  const rows = plan.models.map((model) => [
    model.name,
    `${formatBytes(model.weightsBytes)}${model.weightCopies === 1 && model.threads > 1 ? " (shared)" : ""}`,
    `${formatBytes(model.contextBytes)} (${model.contextSize}×${model.sequences})${model.embeddingBytes > 0 ? ` + ${formatBytes(model.embeddingBytes)} embeddings` : ""}`,
    String(model.threads),
    formatBytes(model.totalBytes),
  ]);
  rows.push(["all models (need not fit at once)", "", "", "", formatBytes(plan.totalBytes)]);
  rows.push([
    "budget",
    "",
    "",
    "",
    `${formatBytes(plan.budgetBytes)} (${plan.budgetSource}, ${plan.backend})`,
  ]);
  const widths = header.map((title, column) =>
    Math.max(title.length, ...rows.map((row) => (row[column] ?? "").length)),
  );
  const format = (row: string[]) =>
    row
      .map((cell, column) => cell.padEnd(widths[column] ?? 0))
      .join("  ")
      .trimEnd();
  return [format(header), ...rows.map(format)];
}

export function formatBytes(bytes: number): string {
  if (bytes >= 1024 * MiB) return `${(bytes / (1024 * MiB)).toFixed(2)} GiB`;
  return `${(bytes / MiB).toFixed(1)} MiB`;
}
