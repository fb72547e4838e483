/** Contracts shared by the orchestrator, the gpu-worker and clients. No side effects on import. */
export * from "./config/index.js";
export * from "./crypto/index.js";
export * from "./errors/index.js";
export * from "./log.js";
export * from "./models/model-spec.js";
export * from "./models/served-models.js";
export * from "./naming.js";
export * from "./openai/index.js";
export * from "./protocol/index.js";
export * from "./redis/index.js";
