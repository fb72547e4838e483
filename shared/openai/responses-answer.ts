import {
  type DeltaChunk,
  type FinalChunk,
  isFinalChunk,
  type StreamChunk,
} from "../protocol/index.js";
import type { ResponsesEcho } from "./responses-request.js";

/**
 * A streamed tool call's piece, as delta chunks carry them (the contract's `tool_calls`: a call's
 * first piece has `id` and `name`, later ones add `arguments` text).
 */
interface ToolCallPiece {
  index: number;
  id?: string;
  name?: string;
  arguments?: string;
}

type Status = "in_progress" | "completed" | "incomplete" | "failed" | "cancelled";

interface MessageItem {
  id: string;
  type: "message";
  role: "assistant";
  status: Status;
  content: { type: "output_text"; text: string; annotations: []; logprobs: [] }[];
}

interface FunctionCallItem {
  id: string;
  type: "function_call";
  status: Status;
  call_id: string;
  name: string;
  arguments: string;
}

type OutputItem = MessageItem | FunctionCallItem;

/**
 * Turns one job's stream chunks into a Responses API answer: the server-sent events of a streamed
 * response (`response.created`, `response.output_item.added`, `response.output_text.delta`,
 * `response.function_call_arguments.delta`, ..., then `response.completed`, or
 * `response.incomplete` when `max_output_tokens` ended it), each with its `sequence_number`, or
 * the one Response object of a finished job. Text becomes a message item; each streamed tool call
 * a `function_call` item, one after another in the order they began. The whole answer is built by
 * the same steps as the events, so the two always agree.
 */
export class ResponsesAnswer {
  readonly id: string;
  readonly createdAt = Math.floor(Date.now() / 1000);
  readonly #jobId: string;
  readonly #model: string;
  readonly #echo: ResponsesEcho;
  readonly #output: OutputItem[] = [];
  /** The item still being written (the last of `#output`), with the tool call index it is for. */
  #open: { item: OutputItem; callIndex?: number } | undefined;
  #sequence = 0;
  #started = false;
  #final: FinalChunk | undefined;
  #failure: { code: string; message: string } | undefined;

  constructor(jobId: string, model: string, echo: ResponsesEcho = {}) {
    this.#jobId = jobId;
    this.#model = model;
    this.#echo = echo;
    this.id = `resp_${jobId}`;
  }

  /** The streamed events one chunk gives (in order); the final chunk gives the last ones. */
  events(chunk: StreamChunk): object[] {
    const events: object[] = [];
    if (!this.#started) {
      this.#started = true;
      events.push(this.#event("response.created", { response: this.#response("in_progress") }));
      events.push(this.#event("response.in_progress", { response: this.#response("in_progress") }));
    }
    if (isFinalChunk(chunk)) {
      this.#final = chunk;
      const status = statusOf(chunk);
      // An answer with nothing in it still has its (empty) message, as OpenAI's does.
      if (this.#output.length === 0) this.#openMessage(events);
      this.#close(events, status === "completed" ? "completed" : "incomplete");
      const type = status === "completed" ? "response.completed" : "response.incomplete";
      events.push(this.#event(type, { response: this.#response(status) }));
      return events;
    }
    if (chunk.delta !== "") this.#addText(events, chunk.delta);
    for (const piece of toolCallsOf(chunk)) this.#addToolCall(events, piece);
    return events;
  }

  /**
   * The events that end a stream whose job failed after it began: the open item closed as
   * incomplete, then `response.failed` with the error (OpenAI's clients read it from there).
   */
  failed(code: string, message: string): object[] {
    const events: object[] = [];
    if (!this.#started) {
      this.#started = true;
      events.push(this.#event("response.created", { response: this.#response("in_progress") }));
    }
    this.#failure = { code, message };
    this.#close(events, "incomplete");
    events.push(this.#event("response.failed", { response: this.#response("failed") }));
    return events;
  }

  /** The whole Response object of a finished job, from all its chunks. */
  complete(chunks: readonly StreamChunk[]): object {
    for (const chunk of chunks) this.events(chunk);
    if (this.#final === undefined) {
      this.#close([], "completed");
      return this.#response("completed");
    }
    return this.#response(statusOf(this.#final));
  }

  #addText(events: object[], delta: string): void {
    if (this.#open?.item.type !== "message") {
      this.#close(events, "completed");
      this.#openMessage(events);
    }
    const open = this.#open?.item as MessageItem;
    const part = open.content[0] as MessageItem["content"][number];
    part.text += delta;
    events.push(
      this.#event("response.output_text.delta", {
        ...this.#where(open),
        content_index: 0,
        delta,
        logprobs: [],
      }),
    );
  }

  #openMessage(events: object[]): void {
    const n = this.#output.filter((item) => item.type === "message").length;
    const item: MessageItem = {
      id: `msg_${this.#jobId}${n === 0 ? "" : `_${n}`}`,
      type: "message",
      role: "assistant",
      status: "in_progress",
      content: [],
    };
    this.#output.push(item);
    this.#open = { item };
    events.push(this.#event("response.output_item.added", { ...this.#at(item), item: copy(item) }));
    const part = {
      type: "output_text" as const,
      text: "",
      annotations: [] as [],
      logprobs: [] as [],
    };
    item.content.push(part);
    events.push(
      this.#event("response.content_part.added", {
        ...this.#where(item),
        content_index: 0,
        part: copy(part),
      }),
    );
  }

  #addToolCall(events: object[], piece: ToolCallPiece): void {
    const open = this.#open;
    if (open?.item.type !== "function_call" || open.callIndex !== piece.index) {
      this.#close(events, "completed");
      const item: FunctionCallItem = {
        id: `fc_${this.#jobId}_${piece.index}`,
        type: "function_call",
        status: "in_progress",
        call_id: piece.id ?? `call_${this.#jobId}_${piece.index}`,
        name: piece.name ?? "",
        arguments: "",
      };
      this.#output.push(item);
      this.#open = { item, callIndex: piece.index };
      events.push(
        this.#event("response.output_item.added", { ...this.#at(item), item: copy(item) }),
      );
    }
    const item = this.#open?.item as FunctionCallItem;
    if (piece.arguments === undefined || piece.arguments === "") return;
    item.arguments += piece.arguments;
    events.push(
      this.#event("response.function_call_arguments.delta", {
        ...this.#where(item),
        delta: piece.arguments,
      }),
    );
  }

  /** Ends the open item: its `.done` events, with the status it ended with. */
  #close(events: object[], status: Status): void {
    const open = this.#open;
    if (open === undefined) return;
    this.#open = undefined;
    const item = open.item;
    item.status = status;
    if (item.type === "message") {
      const part = item.content[0] as MessageItem["content"][number];
      const where = { ...this.#where(item), content_index: 0 };
      events.push(
        this.#event("response.output_text.done", { ...where, text: part.text, logprobs: [] }),
      );
      events.push(this.#event("response.content_part.done", { ...where, part: copy(part) }));
    } else {
      events.push(
        this.#event("response.function_call_arguments.done", {
          ...this.#where(item),
          name: item.name,
          arguments: item.arguments,
        }),
      );
    }
    events.push(this.#event("response.output_item.done", { ...this.#at(item), item: copy(item) }));
  }

  #at(item: OutputItem) {
    return { output_index: this.#output.indexOf(item) };
  }

  #where(item: OutputItem) {
    return { item_id: item.id, output_index: this.#output.indexOf(item) };
  }

  #event(type: string, fields: object): object {
    return { type, sequence_number: this.#sequence++, ...fields };
  }

  /** The Response object now, with `status`. */
  #response(status: Status): object {
    const final = this.#final;
    const ended = status !== "in_progress";
    return {
      id: this.id,
      object: "response",
      created_at: this.createdAt,
      status,
      completed_at: status === "completed" ? Math.floor(Date.now() / 1000) : null,
      error: status === "failed" ? { ...this.#failure } : null,
      incomplete_details:
        final?.finish_reason === "length" && status === "incomplete"
          ? { reason: "max_output_tokens" }
          : null,
      model: this.#model,
      output: ended ? this.#output.map(copy) : [],
      ...this.#echo,
      usage: final === undefined ? null : usageOf(final),
    };
  }
}

/** A final chunk's status: `length` is OpenAI's incomplete answer; a cancelled job's, cancelled. */
function statusOf(final: FinalChunk): Status {
  if (final.finish_reason === "length") return "incomplete";
  if (final.finish_reason === "cancelled") return "cancelled";
  return "completed";
}

/** Responses' usage object, from a final chunk's. */
function usageOf(final: FinalChunk) {
  const { prompt_tokens, completion_tokens } = final.usage;
  return {
    input_tokens: prompt_tokens,
    input_tokens_details: { cached_tokens: final.usage.prompt_tokens_details?.cached_tokens ?? 0 },
    output_tokens: completion_tokens,
    output_tokens_details: { reasoning_tokens: 0 },
    total_tokens: prompt_tokens + completion_tokens,
  };
}

/** A delta chunk's tool call pieces (chat's `delta.tool_calls`), when it has any. */
function toolCallsOf(chunk: DeltaChunk): readonly ToolCallPiece[] {
  const pieces = (chunk as DeltaChunk & { tool_calls?: ToolCallPiece[] }).tool_calls;
  return Array.isArray(pieces) ? pieces : [];
}

function copy<T>(value: T): T {
  return structuredClone(value);
}
