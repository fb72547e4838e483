/**
 * OpenAI's API shapes: request bodies into the pool's request, stream chunks into OpenAI answers,
 * and those answers written to an HTTP response (by the local API and the client's proxy alike).
 */
export * from "./answer-for-shape.js";
export * from "./openai-answer.js";
export * from "./openai-embeddings.js";
export * from "./openai-errors.js";
export * from "./openai-job.js";
export * from "./openai-request.js";
export * from "./responses-answer.js";
export * from "./responses-request.js";
export * from "./send-openai-answer.js";
