import { OpenAiAnswer } from "./openai-answer.js";
import type { OpenAiAnswerShape } from "./openai-request.js";
import { ResponsesAnswer } from "./responses-answer.js";

/** The answer builder for a shape: chat and completions, or the Responses API's. */
export function answerForShape(
  shape: OpenAiAnswerShape,
  jobId: string,
  model: string,
): OpenAiAnswer | ResponsesAnswer {
  return shape.route === "responses"
    ? new ResponsesAnswer(jobId, model, shape.responses)
    : new OpenAiAnswer(shape, jobId, model);
}

/**
 * What a finished stream ends with: `data: [DONE]` for chat and completions; nothing for the
 * Responses API, whose last event (`response.completed`, ...) ends it.
 */
export function streamEndOf(answer: OpenAiAnswer | ResponsesAnswer): "[DONE]" | undefined {
  return answer instanceof ResponsesAnswer ? undefined : "[DONE]";
}
