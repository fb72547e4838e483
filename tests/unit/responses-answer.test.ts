/**
 * A job's stream chunks as a Responses API answer, on hand-built chunks: the event sequence of a
 * text answer and of function calls (chat's streamed `tool_calls` pieces), `sequence_number` and
 * item ids, the incomplete answer of `max_output_tokens`, and the Response object built from the
 * same chunks, which the official client's own accumulator rebuilds from the events.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { accumulateResponse } from "openai/lib/responses/ResponseAccumulator";
import type { ResponseStreamEvent } from "openai/resources/responses/responses";
import { ResponsesAnswer } from "../../shared/openai/index.js";
import type { FinalChunk, StreamChunk } from "../../shared/protocol/index.js";

const final = (seq: number, finish_reason: string, completion_tokens = 5): FinalChunk =>
  ({
    seq,
    done: true,
    finish_reason,
    usage: { prompt_tokens: 7, completion_tokens, prompt_tokens_details: { cached_tokens: 2 } },
    timings: { queue_ms: 1, load_ms: 0, ttft_ms: 2, total_ms: 3 },
  }) as FinalChunk;
type ToolCallPiece = { index: number; id?: string; name?: string; arguments?: string };
const calls = (seq: number, tool_calls: ToolCallPiece[]) =>
  ({ seq, delta: "", tool_calls }) as StreamChunk;

type Event = Record<string, unknown> & { type: string; sequence_number: number };

function eventsOf(chunks: readonly StreamChunk[]): Event[] {
  const answer = new ResponsesAnswer("job1", "tiny", { instructions: null, tools: [] });
  return chunks.flatMap((chunk) => answer.events(chunk)) as Event[];
}

/** The Response object the official client assembles from the events (its stream helper's way). */
function accumulated(events: readonly Event[]) {
  let snapshot: ReturnType<typeof accumulateResponse> | undefined;
  for (const event of events) snapshot = accumulateResponse(event as ResponseStreamEvent, snapshot);
  return snapshot;
}

function assertSequence(events: readonly Event[]): void {
  assert.deepEqual(
    events.map((event) => event.sequence_number),
    events.map((_, index) => index),
    "sequence_number counts every event from 0",
  );
}

describe("Responses answers", () => {
  const text: StreamChunk[] = [
    { seq: 0, delta: "Hello" },
    { seq: 1, delta: "" },
    { seq: 2, delta: " world" },
    final(3, "stop"),
  ];

  it("stream a text answer as one message item", () => {
    const events = eventsOf(text);
    assertSequence(events);
    assert.deepEqual(
      events.map((event) => event.type),
      [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
        "response.output_text.delta",
        "response.output_text.delta",
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.completed",
      ],
    );
    const ids = new Set(
      events.flatMap((event) =>
        "item_id" in event ? [event.item_id] : "item" in event ? [(event.item as Event).id] : [],
      ),
    );
    assert.deepEqual([...ids], ["msg_job1"], "one item, the same id everywhere");
    assert.deepEqual(
      events.filter((event) => event.type === "response.output_text.delta").map((e) => e.delta),
      ["Hello", " world"],
    );
    const done = events.find((event) => event.type === "response.output_text.done");
    assert.equal(done?.text, "Hello world");
    const created = events[0]?.response as Record<string, unknown>;
    assert.equal(created.status, "in_progress");
    assert.deepEqual(created.output, []);
    const completed = events.at(-1)?.response as Record<string, unknown>;
    assert.equal(completed.id, "resp_job1");
    assert.equal(completed.status, "completed");
    assert.deepEqual(completed.usage, {
      input_tokens: 7,
      input_tokens_details: { cached_tokens: 2 },
      output_tokens: 5,
      output_tokens_details: { reasoning_tokens: 0 },
      total_tokens: 12,
    });
  });

  it("give the same Response object whole as the client assembles from the events", () => {
    const whole = new ResponsesAnswer("job1", "tiny", { instructions: null, tools: [] }).complete(
      text,
    ) as Record<string, unknown>;
    const events = eventsOf(text);
    const streamed = accumulated(events);
    assert.equal(streamed?.output_text, "Hello world");
    assert.deepEqual(streamed?.output, whole.output);
    assert.deepEqual(whole.output, [
      {
        id: "msg_job1",
        type: "message",
        role: "assistant",
        status: "completed",
        content: [{ type: "output_text", text: "Hello world", annotations: [], logprobs: [] }],
      },
    ]);
    assert.equal(whole.object, "response");
    assert.equal(whole.model, "tiny");
    assert.equal(whole.error, null);
    assert.equal(whole.incomplete_details, null);
  });

  it("end an answer cut by max_output_tokens as incomplete", () => {
    const events = eventsOf([{ seq: 0, delta: "Hi" }, final(1, "length")]);
    assertSequence(events);
    const last = events.at(-1);
    assert.equal(last?.type, "response.incomplete");
    const response = last?.response as Record<string, unknown>;
    assert.equal(response.status, "incomplete");
    assert.deepEqual(response.incomplete_details, { reason: "max_output_tokens" });
    const item = events.find((event) => event.type === "response.output_item.done")?.item;
    assert.equal((item as Event).status, "incomplete");
  });

  it("stream function calls as function_call items, arguments as deltas", () => {
    const chunks = [
      calls(0, [{ index: 0, id: "call_a", name: "weather" }]),
      calls(1, [{ index: 0, arguments: '{"city":' }]),
      calls(2, [{ index: 0, arguments: '"Paris"}' }]),
      calls(3, [{ index: 1, id: "call_b", name: "time", arguments: "{}" }]),
      final(4, "tool_calls"),
    ];
    const events = eventsOf(chunks);
    assertSequence(events);
    assert.deepEqual(
      events.map((event) => event.type),
      [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.function_call_arguments.delta",
        "response.function_call_arguments.delta",
        "response.function_call_arguments.done",
        "response.output_item.done",
        "response.output_item.added",
        "response.function_call_arguments.delta",
        "response.function_call_arguments.done",
        "response.output_item.done",
        "response.completed",
      ],
    );
    for (const event of events.filter((e) => "item_id" in e)) {
      const expected = event.output_index === 0 ? "fc_job1_0" : "fc_job1_1";
      assert.equal(event.item_id, expected, "an event names its item by the item's id");
    }
    const firstDone = events.find(
      (event) => event.type === "response.function_call_arguments.done",
    );
    assert.equal(firstDone?.arguments, '{"city":"Paris"}');
    assert.equal(firstDone?.name, "weather");
    const added = events.find((event) => event.type === "response.output_item.added")?.item;
    assert.deepEqual(added, {
      id: "fc_job1_0",
      type: "function_call",
      status: "in_progress",
      call_id: "call_a",
      name: "weather",
      arguments: "",
    });
    const whole = new ResponsesAnswer("job1", "tiny").complete(chunks) as { output: unknown[] };
    assert.deepEqual(whole.output, [
      {
        id: "fc_job1_0",
        type: "function_call",
        status: "completed",
        call_id: "call_a",
        name: "weather",
        arguments: '{"city":"Paris"}',
      },
      {
        id: "fc_job1_1",
        type: "function_call",
        status: "completed",
        call_id: "call_b",
        name: "time",
        arguments: "{}",
      },
    ]);
    const streamed = accumulated(events);
    assert.deepEqual(streamed?.output, whole.output);
    assert.equal(streamed?.output_text, "");
  });

  it("close the message before a function call that follows text", () => {
    const events = eventsOf([
      { seq: 0, delta: "Checking." },
      calls(1, [{ index: 0, id: "call_a", name: "weather", arguments: "{}" }]),
      final(2, "tool_calls"),
    ]);
    assertSequence(events);
    const types = events.map((event) => event.type);
    assert.ok(
      types.indexOf("response.output_text.done") < types.lastIndexOf("response.output_item.added"),
    );
    const last = events.at(-1) as Event;
    const output = (last.response as { output: Event[] }).output;
    assert.deepEqual(
      output.map((item) => [item.type, item.id]),
      [
        ["message", "msg_job1"],
        ["function_call", "fc_job1_0"],
      ],
    );
    assert.deepEqual(accumulated(events)?.output, output);
  });

  it("end a stream whose job failed with response.failed and the error", () => {
    const answer = new ResponsesAnswer("job1", "tiny");
    const events = [
      ...answer.events({ seq: 0, delta: "Hi" }),
      ...answer.failed("timed_out", "the job timed out"),
    ] as Event[];
    assertSequence(events);
    const last = events.at(-1);
    assert.equal(last?.type, "response.failed");
    const response = last?.response as Record<string, unknown>;
    assert.equal(response.status, "failed");
    assert.deepEqual(response.error, { code: "timed_out", message: "the job timed out" });
  });

  it("give an empty answer its empty message", () => {
    const whole = new ResponsesAnswer("job1", "tiny").complete([final(0, "stop", 0)]) as {
      output: { content: { text: string }[] }[];
    };
    assert.equal(whole.output.length, 1);
    assert.equal(whole.output[0]?.content[0]?.text, "");
  });
});
