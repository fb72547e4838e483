import type { LLamaContextualRepeatPenalty } from "node-llama-cpp";
import type { SamplingSettings } from "../../shared/protocol/index.js";

/** node-llama-cpp's sampling options for one job, from the request's vLLM-style settings. */
export function toLlamaSampling(sampling: SamplingSettings) {
  const repeatPenalty: false | LLamaContextualRepeatPenalty =
    sampling.repeatPenalty === 1 &&
    sampling.presencePenalty === 0 &&
    sampling.frequencyPenalty === 0
      ? false
      : {
          penalty: sampling.repeatPenalty,
          presencePenalty: sampling.presencePenalty,
          frequencyPenalty: sampling.frequencyPenalty,
        };
  return {
    temperature: sampling.temperature,
    // vLLM disables top-k with -1, node-llama-cpp with 0.
    topK: Math.max(0, sampling.topK),
    topP: sampling.topP,
    minP: sampling.minP,
    ...(sampling.seed === undefined ? {} : { seed: sampling.seed }),
    repeatPenalty,
    customStopTriggers: sampling.stop,
  };
}
