/** The gpu-worker's public surface: the model host, its pools, and the tiny-model generator. */
export { GpuWorker, type GpuWorkerOptions } from "./gpu-worker.js";
export {
  buildTinyLlamaGguf,
  DEMO_MODEL_OPTIONS,
  type TinyLlamaOptions,
  writeTinyLlamaGguf,
} from "./models/tiny-llama.js";
export { ModelPool, type ModelPoolOptions } from "./pool/model-pool.js";
