/**
 * The Responses API (`POST /v1/responses`) with the official `openai` client, unchanged, through
 * the encrypting proxy and on the plaintext `/openai/v1` routes, against the real local stack on
 * the generated ChatML model: the same greedy text as chat completions for the same request,
 * streamed (`responses.create` with `stream`, and the client's `responses.stream` helper) and not;
 * usage; `max_output_tokens` as an incomplete response; input items; `text.format`; what a
 * stateless server refuses; and only ciphertext between the proxy and the pool (a recording
 * relay). Function calls are written here too, as to-dos until tool calls reach chat completions.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import OpenAI from "openai";
import type {
  Response,
  ResponseFunctionToolCall,
  ResponseStreamEvent,
} from "openai/resources/responses/responses";
import { tinyModelPath } from "../support/models.js";
import { assertPerson, personSchema } from "../support/person-schema.js";
import { ProxiedStack } from "../support/proxied-stack.js";
import type { RecordingRelay } from "../support/recording-relay.js";
import type { TestStack } from "../support/stack.js";

const marker = "wombatmarker";
const instructions = `You are a storyteller ${marker}.`;
const question = "Tell me about the sun.";
const chatMessages = [
  { role: "system" as const, content: instructions },
  { role: "user" as const, content: question },
];
const weatherTool = {
  type: "function" as const,
  name: "get_weather",
  description: "The weather in a city",
  parameters: {
    type: "object",
    // Bounded, so that the tiny model's call ends well within max_output_tokens.
    properties: { city: { type: "string", maxLength: 12 } },
    required: ["city"],
    additionalProperties: false,
  },
  strict: true,
};

/** What a streamed response's events say: the text, the final response, the event types. */
async function readEvents(stream: AsyncIterable<ResponseStreamEvent>) {
  const events: ResponseStreamEvent[] = [];
  for await (const event of stream) events.push(event);
  const last = events.at(-1);
  assert.ok(
    last?.type === "response.completed" || last?.type === "response.incomplete",
    `the stream ends with the response (${last?.type})`,
  );
  const text = events
    .flatMap((event) => (event.type === "response.output_text.delta" ? [event.delta] : []))
    .join("");
  return { events, text, response: last.response };
}

/** Events are numbered from 0 without gaps, and each names an item that was added before it. */
function assertEventOrder(events: readonly ResponseStreamEvent[]): void {
  assert.deepEqual(
    events.map((event) => event.sequence_number),
    events.map((_, index) => index),
  );
  assert.equal(events[0]?.type, "response.created");
  const items = new Map<number, string | undefined>();
  for (const event of events) {
    if (event.type === "response.output_item.added") items.set(event.output_index, event.item.id);
    if ("item_id" in event && "output_index" in event) {
      assert.equal(items.get(event.output_index), event.item_id, `${event.type} names its item`);
    }
  }
}

describe("the Responses API through the encrypting proxy (local stack)", () => {
  let proxied: ProxiedStack | undefined;
  let stack: TestStack;
  let relay: RecordingRelay;
  let openai: OpenAI;
  const generated: string[] = [];

  before(async () => {
    const modelPath = await tinyModelPath({ chatTemplate: "chatml" });
    proxied = await ProxiedStack.start({
      models: `tiny=${modelPath}`,
      env: {
        MODEL_SEQUENCES: "1",
        CONTEXT_SIZE: "1024",
        DELTA_WINDOW_MS: "0",
        ALLOW_PLAINTEXT_OPENAI: "true",
      },
      label: "responses",
    });
    ({ stack, relay, openai } = proxied);
  });

  after(async () => {
    await proxied?.close();
  });

  it("answers with chat completions' greedy text, streamed and not, with the usage", async () => {
    const chat = await stack.explain(
      openai.chat.completions.create({
        model: "tiny",
        messages: chatMessages,
        max_completion_tokens: 24,
        temperature: 0,
        seed: 11,
      }),
    );
    const chatText = chat.choices[0]?.message.content ?? "";
    assert.ok(chatText.length > 0);
    const request = {
      model: "tiny",
      instructions,
      input: question,
      max_output_tokens: 24,
      temperature: 0,
      // Not in OpenAI's Responses API: taken as on chat completions.
      ...{ seed: 11 },
    };
    const response = await openai.responses.create(request);
    assert.equal(response.object, "response");
    assert.equal(response.output_text, chatText);
    assert.equal(response.output.length, 1);
    assert.equal(response.output[0]?.type, "message");
    const length = chat.choices[0]?.finish_reason === "length";
    assert.equal(response.status, length ? "incomplete" : "completed");
    assert.equal(response.instructions, instructions);
    assert.equal(response.temperature, 0);
    assert.equal(response.usage?.input_tokens, chat.usage?.prompt_tokens);
    assert.equal(response.usage?.output_tokens, chat.usage?.completion_tokens);
    assert.equal(
      response.usage?.total_tokens,
      (response.usage?.input_tokens ?? 0) + (response.usage?.output_tokens ?? 0),
    );

    const streamed = await readEvents(await openai.responses.create({ ...request, stream: true }));
    assertEventOrder(streamed.events);
    assert.equal(streamed.text, chatText);
    const deltas = streamed.events.filter((event) => event.type === "response.output_text.delta");
    assert.ok(deltas.length > 1, "the text arrived in several events");
    assert.deepEqual(streamed.response.usage, response.usage);
    assert.equal(streamed.response.status, response.status);

    const helper = openai.responses.stream(request);
    let helperText = "";
    helper.on("response.output_text.delta", (event) => {
      helperText += event.delta;
    });
    const final = await helper.finalResponse();
    assert.equal(final.output_text, chatText);
    assert.equal(helperText, chatText);
    generated.push(chatText);
  });

  it("ends an answer cut by max_output_tokens as incomplete", async () => {
    const response = await openai.responses.create({
      model: "tiny",
      input: question,
      max_output_tokens: 3,
      temperature: 0,
    });
    assert.equal(response.status, "incomplete");
    assert.deepEqual(response.incomplete_details, { reason: "max_output_tokens" });
    assert.equal(response.usage?.output_tokens, 3);
    const streamed = await readEvents(
      await openai.responses.create({
        model: "tiny",
        input: question,
        max_output_tokens: 3,
        temperature: 0,
        stream: true,
      }),
    );
    assert.equal(streamed.events.at(-1)?.type, "response.incomplete");
    assert.equal(streamed.text, response.output_text);
  });

  it("takes input items (text parts, an earlier answer) as the chat messages they stand for", async () => {
    const chat = await openai.chat.completions.create({
      model: "tiny",
      messages: [
        { role: "developer", content: instructions },
        { role: "user", content: "Hello there." },
        { role: "assistant", content: "Hello! How can I help?" },
        { role: "user", content: question },
      ],
      max_completion_tokens: 16,
      temperature: 0,
    });
    const response = await openai.responses.create({
      model: "tiny",
      input: [
        { role: "developer", content: instructions },
        {
          type: "message",
          role: "user",
          content: [
            { type: "input_text", text: "Hello " },
            { type: "input_text", text: "there." },
          ],
        },
        {
          type: "message",
          id: "msg_earlier",
          status: "completed",
          role: "assistant",
          content: [{ type: "output_text", text: "Hello! How can I help?", annotations: [] }],
        },
        { role: "user", content: question },
      ],
      max_output_tokens: 16,
      temperature: 0,
    });
    assert.equal(response.output_text, chat.choices[0]?.message.content);
    generated.push(response.output_text);
  });

  it("holds the answer to text.format's JSON Schema", async () => {
    const response = await openai.responses.create({
      model: "tiny",
      input: `A person please ${marker}`,
      max_output_tokens: 200,
      temperature: 0,
      text: { format: { type: "json_schema", name: "person", schema: personSchema } },
    });
    assert.equal(response.status, "completed");
    assertPerson(JSON.parse(response.output_text));
    generated.push(response.output_text);
  });

  it("refuses what a stateless server cannot do, naming the parameter", async () => {
    const cases: [Record<string, unknown>, RegExp][] = [
      [{ previous_response_id: "resp_123" }, /previous_response_id: is not supported/],
      [{ store: true }, /store: true is not supported/],
      [{ background: true }, /background: true is not supported/],
      [{ tools: [{ type: "web_search" }] }, /tools\[0\]\.type: only function tools/],
    ];
    for (const [fields, expected] of cases) {
      await assert.rejects(
        openai.responses.create({
          model: "tiny",
          input: marker,
          ...fields,
        } as OpenAI.Responses.ResponseCreateParamsNonStreaming),
        (error: unknown) => {
          assert.ok(error instanceof OpenAI.BadRequestError, String(error));
          assert.equal(error.type, "invalid_request_error");
          assert.match(error.message, expected);
          return true;
        },
      );
    }
    await assert.rejects(
      openai.responses.create({ model: "no-such-model", input: question }),
      (error: unknown) => error instanceof OpenAI.NotFoundError,
    );
  });

  it("calls a function with tool_choice required, streamed and not", async () => {
    const request = {
      model: "tiny",
      input: "What is the weather in Paris?",
      tools: [weatherTool],
      tool_choice: "required" as const,
      max_output_tokens: 200,
      temperature: 0,
    };
    const response = await openai.responses.create(request);
    assert.equal(response.status, "completed");
    const call = response.output.find((item) => item.type === "function_call") as
      | ResponseFunctionToolCall
      | undefined;
    assert.ok(call, "a function_call item");
    assert.equal(call.name, "get_weather");
    assert.match(call.call_id, /.+/);
    assert.equal(typeof (JSON.parse(call.arguments) as { city?: unknown }).city, "string");

    const streamed = await readEvents(await openai.responses.create({ ...request, stream: true }));
    assertEventOrder(streamed.events);
    const argumentDeltas = streamed.events
      .flatMap((event) =>
        event.type === "response.function_call_arguments.delta" ? [event.delta] : [],
      )
      .join("");
    assert.equal(argumentDeltas, call.arguments, "the deltas assemble to the call");
    const done = streamed.events.find(
      (event) => event.type === "response.function_call_arguments.done",
    );
    assert.equal(
      done?.type === "response.function_call_arguments.done" && done.arguments,
      call.arguments,
    );

    const final = await openai.responses.stream(request).finalResponse();
    const helperCall = final.output.find((item) => item.type === "function_call");
    assert.equal(helperCall?.type === "function_call" && helperCall.arguments, call.arguments);
  });

  it("answers after a function_call_output item", async () => {
    const first = await openai.responses.create({
      model: "tiny",
      input: "What is the weather in Paris?",
      tools: [weatherTool],
      tool_choice: "required",
      max_output_tokens: 200,
      temperature: 0,
    });
    const call = first.output.find((item) => item.type === "function_call");
    assert.ok(call?.type === "function_call");
    const second: Response = await openai.responses.create({
      model: "tiny",
      input: [
        { role: "user", content: "What is the weather in Paris?" },
        call,
        { type: "function_call_output", call_id: call.call_id, output: "sunny, 24 C" },
      ],
      tools: [weatherTool],
      tool_choice: "none",
      max_output_tokens: 24,
      temperature: 0,
    });
    assert.ok(second.output_text.length > 0);
    assert.ok(!second.output.some((item) => item.type === "function_call"));
  });

  it("serves the plaintext /openai/v1/responses route when ALLOW_PLAINTEXT_OPENAI is on", async () => {
    const plain = new OpenAI({
      baseURL: `${stack.url}/v2/any-id/openai/v1`,
      apiKey: "x",
      maxRetries: 0,
    });
    const request = {
      model: "tiny",
      instructions,
      input: question,
      max_output_tokens: 24,
      temperature: 0,
    };
    const viaProxy = await openai.responses.create(request);
    const response = await plain.responses.create(request);
    assert.equal(response.output_text, viaProxy.output_text);
    const streamed = await readEvents(await plain.responses.create({ ...request, stream: true }));
    assertEventOrder(streamed.events);
    assert.equal(streamed.text, viaProxy.output_text);
    await assert.rejects(
      plain.responses.create({ ...request, previous_response_id: "resp_1" }),
      (error: unknown) =>
        error instanceof OpenAI.BadRequestError && /previous_response_id/.test(error.message),
    );
    assert.ok(!stack.logs.join("\n").includes(marker), "no prompt text in the logs");
  });

  it("lets no prompt or output text cross between the proxy and the pool", () => {
    const traffic = relay.traffic;
    assert.ok(relay.calls.some((call) => call.path === "/run"));
    assert.ok(traffic.includes("encrypted_input"));
    assert.ok(!traffic.includes(marker), "no prompt text");
    assert.ok(!traffic.includes("storyteller"), "no instructions");
    assert.ok(generated.length >= 3);
    for (const text of generated) {
      for (const piece of text.split(/\s+/).filter((word) => /^[A-Za-z]{6,}$/.test(word))) {
        assert.ok(!traffic.includes(piece), "no generated text");
      }
      assert.ok(!traffic.includes(text.slice(0, 20)), "no generated text");
    }
  });
});
