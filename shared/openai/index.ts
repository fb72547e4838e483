/** OpenAI's API shapes: request bodies into the pool's request, stream chunks into OpenAI answers. */
export * from "./openai-answer.js";
export * from "./openai-errors.js";
export * from "./openai-job.js";
export * from "./openai-request.js";
