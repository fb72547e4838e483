import {
  assembleToolCalls,
  type FinalChunk,
  isFinalChunk,
  type StreamChunk,
} from "../protocol/index.js";
import { openAiEmbeddingsAnswer } from "./openai-embeddings.js";
import type { OpenAiAnswerShape } from "./openai-request.js";
import { openAiToolCallDeltas, openAiToolCalls } from "./openai-tool-calls.js";

/** OpenAI's usage object, from a final chunk's (extra fields such as token details kept). */
function usageOf(final: FinalChunk) {
  const { prompt_tokens, completion_tokens, ...details } = final.usage as FinalChunk["usage"] &
    Record<string, unknown>;
  return {
    prompt_tokens,
    completion_tokens,
    total_tokens: prompt_tokens + completion_tokens,
    ...details,
  };
}

/**
 * OpenAI knows `stop`, `length` and `tool_calls`; a job stopped by its caller ended, as far as it
 * can tell, early.
 */
function finishReasonOf(final: FinalChunk): "stop" | "length" | "tool_calls" {
  if (final.finish_reason === "length" || final.finish_reason === "tool_calls") {
    return final.finish_reason;
  }
  return "stop";
}

/**
 * Turns one job's stream chunks into OpenAI's answer: `chat.completion.chunk` or `text_completion`
 * events for a streamed request (then `[DONE]`), or one `chat.completion` / `text_completion`
 * object. Used by the encrypting proxy (on the caller's machine) and by the plaintext OpenAI routes.
 */
export class OpenAiAnswer {
  readonly id: string;
  readonly created = Math.floor(Date.now() / 1000);
  #started = false;

  constructor(
    readonly shape: OpenAiAnswerShape,
    jobId: string,
    readonly model: string,
  ) {
    this.id = `${shape.route === "chat" ? "chatcmpl" : shape.route === "embeddings" ? "embd" : "cmpl"}-${jobId}`;
  }

  /** The streamed events one chunk gives (in order); the final chunk gives the last ones. */
  events(chunk: StreamChunk): object[] {
    const events: object[] = [];
    const chat = this.shape.route === "chat";
    if (chat && !this.#started) {
      events.push(
        this.#chunk({ index: 0, delta: { role: "assistant", content: "" }, finish_reason: null }),
      );
    }
    this.#started = true;
    if (!isFinalChunk(chunk)) {
      if (chunk.delta !== "") {
        events.push(
          this.#chunk(
            chat
              ? { index: 0, delta: { content: chunk.delta }, finish_reason: null }
              : { index: 0, text: chunk.delta, logprobs: null, finish_reason: null },
          ),
        );
      }
      // Function calls follow the chunk's text, as they were generated.
      if (chat && chunk.tool_calls !== undefined && chunk.tool_calls.length > 0) {
        events.push(
          this.#chunk({
            index: 0,
            delta: { tool_calls: openAiToolCallDeltas(chunk.tool_calls) },
            finish_reason: null,
          }),
        );
      }
      return events;
    }
    const finishReason = finishReasonOf(chunk);
    events.push(
      this.#chunk(
        chat
          ? { index: 0, delta: {}, finish_reason: finishReason }
          : { index: 0, text: "", logprobs: null, finish_reason: finishReason },
      ),
    );
    if (this.shape.includeUsage) events.push({ ...this.#chunk(undefined), usage: usageOf(chunk) });
    return events;
  }

  /** The whole answer of a finished job, from all its chunks. */
  complete(chunks: readonly StreamChunk[]): object {
    if (this.shape.route === "embeddings") {
      const final = chunks.find(isFinalChunk);
      return openAiEmbeddingsAnswer(final, this.model, this.shape.encodingFormat ?? "float");
    }
    const text = chunks.map((chunk) => ("delta" in chunk ? chunk.delta : "")).join("");
    const calls = assembleToolCalls(
      chunks.flatMap((chunk) => ("delta" in chunk ? (chunk.tool_calls ?? []) : [])),
    );
    const final = chunks.find(isFinalChunk);
    const finishReason = final === undefined ? "stop" : finishReasonOf(final);
    const usage = final === undefined ? undefined : usageOf(final);
    const base = { id: this.id, created: this.created, model: this.model };
    if (this.shape.route === "chat") {
      return {
        ...base,
        object: "chat.completion",
        choices: [
          {
            index: 0,
            // As OpenAI answers a reply of calls: `content` null unless there was text too.
            message:
              calls.length === 0
                ? { role: "assistant", content: text }
                : {
                    role: "assistant",
                    content: text === "" ? null : text,
                    tool_calls: openAiToolCalls(calls),
                  },
            logprobs: null,
            finish_reason: finishReason,
          },
        ],
        ...(usage === undefined ? {} : { usage }),
      };
    }
    return {
      ...base,
      object: "text_completion",
      choices: [{ index: 0, text, logprobs: null, finish_reason: finishReason }],
      ...(usage === undefined ? {} : { usage }),
    };
  }

  #chunk(choice: object | undefined): object {
    return {
      id: this.id,
      object: this.shape.route === "chat" ? "chat.completion.chunk" : "text_completion",
      created: this.created,
      model: this.model,
      choices: choice === undefined ? [] : [choice],
    };
  }
}

/**
 * One server-sent event's text, as OpenAI (and RunPod's vLLM worker) write them; a Responses API
 * event (one with a `type`) is named by it on an `event:` line, as OpenAI names them.
 */
export function sseEvent(data: object | "[DONE]"): string {
  if (typeof data === "string") return `data: ${data}\n\n`;
  const type = (data as { type?: unknown }).type;
  const name = typeof type === "string" ? `event: ${type}\n` : "";
  return `${name}data: ${JSON.stringify(data)}\n\n`;
}

/** OpenAI's list of models, for `/v1/models`. */
export function openAiModelList(models: readonly string[], created = 0) {
  return {
    object: "list",
    data: models.map((id) => ({ id, object: "model", created, owned_by: "secure-llm-pool" })),
  };
}
