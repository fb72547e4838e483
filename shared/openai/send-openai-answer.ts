import type { ServerResponse } from "node:http";
import type { StreamChunk } from "../protocol/index.js";
import { answerForShape, streamEndOf } from "./answer-for-shape.js";
import { sseEvent } from "./openai-answer.js";
import { openAiError } from "./openai-errors.js";
import type { OpenAiAnswerShape } from "./openai-request.js";
import { ResponsesAnswer } from "./responses-answer.js";

/** A failure while a job's chunks were read: the pool's code (or the proxy's own) and a message. */
export interface AnswerFailure {
  code: string;
  message: string;
  /** For a refusal under overload: sent as `Retry-After`, in seconds. */
  retryAfterSeconds?: number | undefined;
}

export interface SendOpenAiAnswerOptions {
  shape: OpenAiAnswerShape;
  jobId: string;
  /** The model named in the answer. */
  model: string;
  /** The job's chunks, in order; throws when the job fails. */
  chunks: AsyncIterable<StreamChunk>;
  /** What a thrown error means to the caller. */
  failureOf: (error: unknown) => AnswerFailure;
}

/**
 * Writes a job's answer the way OpenAI's API does: server-sent `chat.completion.chunk` or
 * `text_completion` events ending with `data: [DONE]`, or one JSON object. Headers wait for the
 * first chunk, so a request refused at once gets an OpenAI error with its HTTP status; a job that
 * fails mid-stream ends with an `error` event. Resolves when the answer is written (or the caller
 * left).
 */
export async function sendOpenAiAnswer(
  response: ServerResponse,
  options: SendOpenAiAnswerOptions,
): Promise<void> {
  const answer = answerForShape(options.shape, options.jobId, options.model);
  const collected: StreamChunk[] = [];
  try {
    for await (const chunk of options.chunks) {
      if (response.destroyed) return;
      if (!options.shape.stream) {
        collected.push(chunk);
        continue;
      }
      if (!response.headersSent) {
        response.writeHead(200, {
          "content-type": "text/event-stream; charset=utf-8",
          "cache-control": "no-cache",
          connection: "keep-alive",
        });
      }
      for (const event of answer.events(chunk)) response.write(sseEvent(event));
    }
  } catch (error) {
    if (response.destroyed) return;
    const failure = options.failureOf(error);
    const { status, body } = openAiError(failure.code, failure.message);
    if (response.headersSent) {
      // A Responses stream ends with `response.failed`, which carries the error.
      const events =
        answer instanceof ResponsesAnswer
          ? answer.failed(body.error.code, failure.message)
          : [body];
      response.end(events.map(sseEvent).join(""));
      return;
    }
    const retryAfter = failure.retryAfterSeconds;
    sendJson(response, status, body, retryAfter === undefined ? {} : { "retry-after": retryAfter });
    return;
  }
  if (response.destroyed) return;
  if (options.shape.stream) {
    if (!response.headersSent) {
      response.writeHead(200, { "content-type": "text/event-stream; charset=utf-8" });
    }
    const end = streamEndOf(answer);
    response.end(end === undefined ? "" : sseEvent(end));
    return;
  }
  sendJson(response, 200, answer.complete(collected));
}

export function sendJson(
  response: ServerResponse,
  status: number,
  body: unknown,
  headers: Record<string, string | number> = {},
): void {
  const text = JSON.stringify(body);
  response.writeHead(status, {
    ...headers,
    "content-type": "application/json; charset=utf-8",
    "content-length": Buffer.byteLength(text),
  });
  response.end(text);
}
