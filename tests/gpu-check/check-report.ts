/**
 * The GPU check's report: everything as JSON (`gpu-check.json`) and a short markdown summary
 * (`gpu-check.md`) of the same numbers.
 */
import { formatBytes, type PlannedModel } from "../../gpu-worker/memory/memory-plan.js";
import { percentile } from "../bench/bench-stats.js";
import type { GenerationSamples } from "../bench/generation-measures.js";
import type { CheckModel } from "./check-models.js";
import type { FirstRequestLine } from "./first-request.js";
import type { FirstRequestReport, LoadedModelReport } from "./measure-model.js";
import type { GpuReading } from "./nvidia-smi.js";

export interface CheckReport {
  startedAt: string;
  finishedAt?: string;
  /** `LLAMA_GPU` of the run: `cuda` on the GPU machine, `off` in a dry run. */
  gpu: string;
  settings: {
    utilization: string;
    sequences: number;
    llamaThreads: number;
    runs: number;
    maxTokens: number;
  };
  /** Seconds of the entry script's own steps (unpack, build, models). */
  shellSteps: Record<string, number>;
  models: CheckModel[];
  gpuBefore?: GpuReading | undefined;
  steps: { name: string; ms: number; result: Record<string, unknown> }[];
  failedStep?: string | undefined;
  error?: string;
}

interface LoadedLine {
  name: string;
  planned?: PlannedModel;
  loaded: LoadedModelReport;
  nvidiaSmi?: { processMiB?: number; gpuUsedMiB: number; gpuUsedGrowthMiB: number };
}

const MiB = 2 ** 20;

export function formatReport(report: CheckReport): string {
  const lines = [
    `# GPU check (${report.gpu === "off" ? "dry run on the CPU" : "CUDA"})`,
    "",
    `${report.startedAt} → ${report.finishedAt ?? "?"}. ${report.failedStep === undefined ? "**Passed.**" : `**Failed at step "${report.failedStep}".**`}`,
    "",
  ];
  const gpu = report.gpuBefore;
  lines.push(
    gpu === undefined
      ? "No `nvidia-smi` on this machine."
      : `GPU: ${gpu.name}, compute capability ${gpu.computeCapability}, driver ${gpu.driver}, ${gpu.memoryTotalMiB} MiB (${gpu.memoryUsedMiB} MiB in use before the check).`,
    "",
    "| entry script step | seconds |",
    "|---|---|",
    ...Object.entries(report.shellSteps).map(([name, seconds]) => `| ${name} | ${seconds} |`),
    "",
    "| model | parameters | file | written in |",
    "|---|---|---|---|",
    ...report.models.map(
      (model) =>
        `| ${model.name} | ${(model.parameters / 1e6).toFixed(1)} M | ${formatBytes(model.fileBytes)} | ${(model.writeMs / 1000).toFixed(1)} s |`,
    ),
    "",
  );
  for (const step of report.steps) {
    lines.push(`## ${step.name} (${(step.ms / 1000).toFixed(1)} s)`, "");
    if (step.name === "memory plan") {
      lines.push(...memorySection(step.result, report.settings.utilization));
    } else if (step.name === "first request after load") {
      lines.push(...firstRequestSection(step.result));
    } else if (step.name === "node-llama-cpp vs stack")
      lines.push(...throughputSection(step.result));
    else if (step.name === "cancellation") lines.push(...cancellationSection(step.result));
    else if (step.name === "hops floor") lines.push(...hopsSection(step.result));
    else lines.push("```json", JSON.stringify(step.result, null, 2), "```", "");
  }
  if (report.error !== undefined) lines.push("## Error", "", "```", report.error, "```", "");
  return `${lines.join("\n")}\n`;
}

function memorySection(result: Record<string, unknown>, utilization: string): string[] {
  const table = (result.planTable as string[] | undefined) ?? [];
  const loaded = (result.loaded as LoadedLine[] | undefined) ?? [];
  const mib = (bytes: number | undefined) =>
    bytes === undefined ? "–" : `${(bytes / MiB).toFixed(0)}`;
  return [
    `The gpu-worker's plan at GPU_MEMORY_UTILIZATION ${utilization}:`,
    "",
    "```",
    ...table,
    "```",
    "",
    "Each model loaded alone, in its own process, by the gpu-worker's `loadModel` with the plan's options (MiB):",
    "",
    "| model | planned (weights + context) | VRAM cap | GPU layers | node-llama-cpp: VRAM used (device) | llama.cpp's own buffers (VRAM / RAM) | nvidia-smi: process | nvidia-smi: growth of GPU use | load |",
    "|---|---|---|---|---|---|---|---|---|",
    ...loaded.map(
      (line) =>
        `| ${line.name} | ${mib(line.planned?.totalBytes)} (${mib(line.planned?.weightsBytes)} + ${mib(line.planned?.contextBytes)}) | ${mib(line.loaded.vramCapBytes)} | ${line.loaded.gpuLayers}/${line.loaded.totalLayers ?? "?"} | ${mib(line.loaded.vram.used)} | ${mib(line.loaded.llamaUsage.gpuVram)} / ${mib(line.loaded.llamaUsage.cpuRam)} | ${line.nvidiaSmi?.processMiB ?? "–"} | ${line.nvidiaSmi?.gpuUsedGrowthMiB ?? "–"} | ${(line.loaded.loadMs / 1000).toFixed(1)} s |`,
    ),
    "",
  ];
}

/** The first request after a load against the second, cold and after the warm-up. */
export function firstRequestSection(result: Record<string, unknown>): string[] {
  const models = (result.models as FirstRequestLine[] | undefined) ?? [];
  const ms = (value: number | undefined) => (value === undefined ? "–" : value.toFixed(1));
  const row = (model: string, label: string, line: FirstRequestReport) => {
    const [first, second] = line.requests;
    const ratio =
      first?.firstTextMs !== undefined &&
      second?.firstTextMs !== undefined &&
      second.firstTextMs > 0
        ? `${(first.firstTextMs / second.firstTextMs).toFixed(1)}×`
        : "–";
    return `| ${model} | ${label} | ${(line.loadMs / 1000).toFixed(1)} s | ${ms(line.warmUpMs)} | ${first?.promptTokens ?? "–"} | ${ms(first?.firstTextMs)} | ${ms(second?.firstTextMs)} | ${ratio} |`;
  };
  return [
    `Each model in a fresh process with an empty CUDA JIT cache: the first request after the load, then a second of the same length (about ${result.promptTokens} prompt tokens, no common prefix, no prompt cache, ${models[0]?.cold.requests[0]?.completionTokens ?? "?"} tokens generated); time to the first text, as a model thread hands it on (ms). *cold*: right after the load; *warmed up*: after the model thread's one-token warm-up, as the pool's first job finds it.`,
    "",
    "| model | first request | load | warm-up (ms) | prompt tokens | 1st request: first text | 2nd request: first text | 1st / 2nd |",
    "|---|---|---|---|---|---|---|---|",
    ...models.flatMap((line) => [
      row(line.model, "cold", line.cold),
      row(line.model, "warmed up", line.warm),
    ]),
    "",
  ];
}

function throughputSection(result: Record<string, unknown>): string[] {
  const samples = (key: string) => result[key] as GenerationSamples;
  const p = (values: number[], digits: number) =>
    `${percentile(values, 50).toFixed(digits)} (p90 ${percentile(values, 90).toFixed(digits)})`;
  const row = (measure: string, alone: string, stack: string, unit: string) =>
    `| ${measure} | ${alone} | ${stack} | ${unit} |`;
  const lines = [
    `The big model, after one unmeasured round each; the stack serves both models and was ready ${((result.stackStartMs as number) / 1000).toFixed(1)} s after its start` +
      (result.gpuWorkerMiB === undefined
        ? "."
        : `; nvidia-smi: the gpu-worker holds ${result.gpuWorkerMiB} MiB.`),
    "",
    "| measure | node-llama-cpp alone | full stack | unit |",
    "|---|---|---|---|",
  ];
  for (const [label, direct, stack] of [
    ["1 request", "direct1", "stack1"],
    ["8 at once", "direct8", "stack8"],
  ] as const) {
    lines.push(
      row(
        `${label}: time to first token`,
        p(samples(direct).ttftMs, 1),
        p(samples(stack).ttftMs, 1),
        "ms",
      ),
      row(
        `${label}: speed (all requests)`,
        p(samples(direct).tokensPerSecond, 0),
        p(samples(stack).tokensPerSecond, 0),
        "tok/s",
      ),
    );
  }
  lines.push("");
  return lines;
}

interface Cancelled {
  latencyMs: number;
  chunksAfter: number;
}

function hopsSection(result: Record<string, unknown>): string[] {
  const ms = (key: string) => (typeof result[key] === "number" ? result[key].toFixed(2) : "–");
  return [
    "The stack's process hops with no work in them (`tests/bench/hops.ts`): the floor under its time to first token on this machine, to compare with the stack's overhead over node-llama-cpp above (ms):",
    "",
    "| requests | p50 | p90 |",
    "|---|---|---|",
    `| back to back | ${ms("backToBackMsP50")} | ${ms("backToBackMsP90")} |`,
    `| 60 ms idle between them | ${ms("idleMsP50")} | ${ms("idleMsP90")} |`,
    "",
  ];
}

function cancellationSection(result: Record<string, unknown>): string[] {
  const alone = (result.alone as Cancelled[] | undefined) ?? [];
  const busy = result.amongSeven as Cancelled | undefined;
  const line = (label: string, cancelled: Cancelled) =>
    `| ${label} | ${cancelled.latencyMs.toFixed(1)} | ${cancelled.chunksAfter} |`;
  return [
    "A 1,500-token job on the big model, cancelled (`POST /cancel`) when its first chunk arrived; latency from the cancel request to the end of its stream, as the caller sees it:",
    "",
    "| job | latency (ms) | chunks after the cancel |",
    "|---|---|---|",
    ...alone.map((cancelled, index) => line(`alone, run ${index + 1}`, cancelled)),
    ...(busy === undefined ? [] : [line("among 7 other jobs", busy)]),
    "",
    result.nextJobCompleted === true ? "The next job completed on the freed sequence." : "",
    "",
  ];
}
