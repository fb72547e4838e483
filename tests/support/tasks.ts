/**
 * Generation tasks as the gpu-worker receives them, for tests that drive the model pool directly:
 * greedy, no repeat penalty (the product's defaults), no stop strings.
 */
import type { GenerationTask, TaskMessage } from "../../shared/protocol/index.js";

/** A greedy task; `sampling` adds or overrides settings (a grammar, say). */
export function greedyTask(
  input: string | TaskMessage[],
  maxTokens: number,
  sampling: Partial<GenerationTask["sampling"]> = {},
): GenerationTask {
  return {
    model: "tiny",
    input:
      typeof input === "string"
        ? { kind: "prompt", prompt: input }
        : { kind: "chat", messages: input },
    sampling: {
      maxTokens,
      temperature: 0,
      topP: 1,
      topK: 0,
      minP: 0,
      stop: [],
      repeatPenalty: 1,
      presencePenalty: 0,
      frequencyPenalty: 0,
      ...sampling,
    },
  };
}
