import {
  assembleToolCalls,
  type DeltaChunk,
  type FinalChunk,
  type FinishReason,
  isFinalChunk,
  type StreamChunk,
  type TokenLogprob,
} from "../protocol/index.js";
import { openAiEmbeddingsAnswer } from "./openai-embeddings.js";
import { chatLogprobs, completionLogprobs } from "./openai-logprobs.js";
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
function finishReasonOf(final: { finish_reason: FinishReason }): "stop" | "length" | "tool_calls" {
  if (final.finish_reason === "length" || final.finish_reason === "tool_calls") {
    return final.finish_reason;
  }
  return "stop";
}

/** Each choice's end (one, without `n`), in index order. */
function endsOf(final: FinalChunk): { index: number; finish_reason: FinishReason }[] {
  return final.choices ?? [{ index: 0, finish_reason: final.finish_reason }];
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
  /** Choices whose first chunk (chat's role) went out; characters each sent (completions' offsets). */
  readonly #sent = new Map<number, number>();

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
    if (!this.#started) this.#open(0, events);
    this.#started = true;
    if (!isFinalChunk(chunk)) {
      const index = chunk.index ?? 0;
      this.#open(index, events);
      // Function calls follow the chunk's text, as they were generated (tools come with one choice).
      const calls =
        chat && chunk.tool_calls !== undefined && chunk.tool_calls.length > 0
          ? this.#chunk({
              index,
              delta: { tool_calls: openAiToolCallDeltas(chunk.tool_calls) },
              finish_reason: null,
            })
          : undefined;
      if (chunk.delta === "" && chunk.logprobs === undefined) {
        if (calls !== undefined) events.push(calls);
        return events;
      }
      const offset = this.#sent.get(index) ?? 0;
      this.#sent.set(index, offset + chunk.delta.length);
      events.push(
        this.#chunk(
          chat
            ? {
                index,
                delta: { content: chunk.delta },
                ...(this.shape.logprobs === true
                  ? { logprobs: chatLogprobs(chunk.logprobs ?? []) }
                  : {}),
                finish_reason: null,
              }
            : {
                index,
                text: chunk.delta,
                logprobs: this.#completionLogprobs(chunk.logprobs, offset),
                finish_reason: null,
              },
        ),
      );
      if (calls !== undefined) events.push(calls);
      return events;
    }
    for (const end of endsOf(chunk)) {
      this.#open(end.index, events);
      const finishReason = finishReasonOf(end);
      events.push(
        this.#chunk(
          chat
            ? { index: end.index, delta: {}, finish_reason: finishReason }
            : { index: end.index, text: "", logprobs: null, finish_reason: finishReason },
        ),
      );
    }
    if (this.shape.includeUsage) events.push({ ...this.#chunk(undefined), usage: usageOf(chunk) });
    return events;
  }

  /** A chat choice's first chunk (its role), once. */
  #open(index: number, events: object[]): void {
    if (this.#sent.has(index)) return;
    this.#sent.set(index, 0);
    if (this.shape.route !== "chat") return;
    events.push(
      this.#chunk({ index, delta: { role: "assistant", content: "" }, finish_reason: null }),
    );
  }

  #completionLogprobs(entries: readonly TokenLogprob[] | undefined, offset: number) {
    return this.shape.logprobs === true ? completionLogprobs(entries ?? [], offset) : null;
  }

  /** The whole answer of a finished job, from all its chunks. */
  complete(chunks: readonly StreamChunk[]): object {
    const final = chunks.find(isFinalChunk);
    if (this.shape.route === "embeddings") {
      return openAiEmbeddingsAnswer(final, this.model, this.shape.encodingFormat ?? "float");
    }
    const usage = final === undefined ? undefined : usageOf(final);
    const base = { id: this.id, created: this.created, model: this.model };
    const ends =
      final === undefined ? [{ index: 0, finish_reason: "stop" as const }] : endsOf(final);
    const deltas = chunks.filter((chunk): chunk is DeltaChunk => !isFinalChunk(chunk));
    const chat = this.shape.route === "chat";
    const choices = ends.map((end) => {
      const own = deltas.filter((chunk) => (chunk.index ?? 0) === end.index);
      const text = own.map((chunk) => chunk.delta).join("");
      const entries = own.flatMap((chunk) => chunk.logprobs ?? []);
      const logprobs =
        this.shape.logprobs !== true
          ? null
          : chat
            ? chatLogprobs(entries)
            : completionLogprobs(entries, 0);
      const finish_reason = finishReasonOf(end);
      const calls = assembleToolCalls(own.flatMap((chunk) => chunk.tool_calls ?? []));
      return chat
        ? {
            index: end.index,
            // As OpenAI answers a reply of calls: `content` null unless there was text too.
            message:
              calls.length === 0
                ? { role: "assistant", content: text }
                : {
                    role: "assistant",
                    content: text === "" ? null : text,
                    tool_calls: openAiToolCalls(calls),
                  },
            logprobs,
            finish_reason,
          }
        : { index: end.index, text, logprobs, finish_reason };
    });
    return {
      ...base,
      object: chat ? "chat.completion" : "text_completion",
      choices,
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
