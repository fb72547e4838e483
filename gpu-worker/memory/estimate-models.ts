/**
 * What each model will need on this machine, asked of node-llama-cpp on the backend the model
 * threads use, before any model is loaded: run by a spare model thread (`estimateMemory`), whose
 * backend is the one the first load then uses. Weights are never loaded: only GGUF headers are
 * read.
 */
import { GgufInsights, type Llama, readGgufFileInfo } from "node-llama-cpp";
import {
  DEFAULT_MAX_CONTEXT_SIZE,
  type EstimateReport,
  type EstimateRequest,
  type ModelEstimate,
} from "./estimate-messages.js";

export async function estimateModels(
  llama: Llama,
  request: EstimateRequest,
): Promise<EstimateReport> {
  const onGpu = llama.gpu !== false;
  const models: ModelEstimate[] = [];
  for (const model of request.models) {
    const fileInfo = await readGgufFileInfo(model.path, { logWarnings: false });
    const insights = await GgufInsights.from(fileInfo, llama);
    const contextSize =
      model.contextSize ??
      Math.min(insights.trainContextSize ?? DEFAULT_MAX_CONTEXT_SIZE, DEFAULT_MAX_CONTEXT_SIZE);
    // On a GPU the plan is full offload; on a CPU no layer is offloaded.
    const gpuLayers = onGpu ? insights.totalLayers : 0;
    const weights = await insights.estimateModelResourceRequirementsV2({ gpuLayers });
    const context = await insights.estimateContextResourceRequirementsV2({
      contextSize,
      modelGpuLayers: gpuLayers,
      sequences: model.sequences,
    });
    // The embedding context exactly as the model thread creates it (`createEmbeddingContext`).
    const embedding =
      model.embeddings === true
        ? await insights.estimateContextResourceRequirementsV2({
            contextSize,
            modelGpuLayers: gpuLayers,
            sequences: 1,
            batchSize: contextSize,
            isEmbeddingContext: true,
          })
        : undefined;
    models.push({
      name: model.name,
      contextSize,
      weightsBytes: onGpu ? weights.gpuVram : weights.cpuRam,
      contextBytes: onGpu ? context.gpuVram : context.cpuRam,
      embeddingBytes: embedding === undefined ? 0 : onGpu ? embedding.gpuVram : embedding.cpuRam,
    });
  }
  const memory = onGpu ? await llama.getVramState() : await llama.getRamState();
  return {
    device: onGpu ? "gpu" : "cpu",
    backend: llama.gpu === false ? "cpu" : llama.gpu,
    totalBytes: memory.total,
    freeBytes: memory.free,
    mmap: llama.supportsMmap,
    models,
  };
}
