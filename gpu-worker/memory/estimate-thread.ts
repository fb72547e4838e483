/**
 * A short-lived worker thread that asks node-llama-cpp what each model will need, on the backend
 * the model threads will use, before any model is loaded. It runs in its own thread (not the
 * gpu-worker's main thread) so the main thread never holds a llama.cpp backend: the thread
 * disposes its `Llama` while idle and exits. Weights are never loaded: only GGUF headers are read.
 */
import { parentPort, workerData } from "node:worker_threads";
import {
  GgufInsights,
  getLlama,
  type Llama,
  LlamaLogLevel,
  readGgufFileInfo,
} from "node-llama-cpp";
import { messageOf } from "../../shared/errors/index.js";
import {
  DEFAULT_MAX_CONTEXT_SIZE,
  type EstimateMessage,
  type EstimateReport,
  type EstimateRequest,
  type ModelEstimate,
} from "./estimate-messages.js";

const request = workerData as EstimateRequest;

async function estimate(llama: Llama): Promise<EstimateReport> {
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

let message: EstimateMessage;
let llama: Llama | undefined;
try {
  llama = await getLlama({
    build: "never",
    gpu: request.gpu,
    logLevel: LlamaLogLevel.error,
    logger: (level, text) => {
      if (level === LlamaLogLevel.error || level === LlamaLogLevel.fatal) {
        process.stderr.write(`[llama.cpp memory plan] ${text.trimEnd()}\n`);
      }
    },
  });
  message = { type: "estimate", report: await estimate(llama) };
} catch (error) {
  message = {
    type: "estimate-failed",
    message: messageOf(error),
  };
} finally {
  // Idle (nothing generates here), so disposing is safe.
  await llama?.dispose();
}
parentPort?.postMessage(message);
