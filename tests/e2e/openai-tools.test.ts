/**
 * Function calling with the official `openai` client, unchanged, through the encrypting proxy,
 * against the real local stack on the generated ChatML model (random weights: only the grammars
 * make its calls valid). A recording relay between the proxy and the pool shows that no prompt,
 * tool definition, output text or call arguments cross in the clear. Also: tools in the native
 * request (`/runsync`).
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import OpenAI from "openai";
import { assembleToolCalls, type ToolCallPiece } from "../../shared/protocol/index.js";
import { tinyModelPath } from "../support/models.js";
import { assertPerson, personSchema } from "../support/person-schema.js";
import { ProxiedStack } from "../support/proxied-stack.js";
import type { RecordingRelay } from "../support/recording-relay.js";
import { referenceTexts } from "../support/reference.js";
import type { TestStack } from "../support/stack.js";

const marker = "wombatmarker";
const messages = [
  { role: "system" as const, content: `You keep records ${marker}.` },
  { role: "user" as const, content: "Record a person, then tell me the weather." },
];

const weatherSchema = {
  type: "object",
  properties: {
    city: { enum: ["Paris", "Rome", "Oslo"] },
    celsius: { type: "boolean" },
  },
  required: ["city", "celsius"],
  additionalProperties: false,
};

function assertWeather(value: unknown): void {
  assert.ok(typeof value === "object" && value !== null && !Array.isArray(value));
  const args = value as Record<string, unknown>;
  assert.deepEqual(Object.keys(args).sort(), ["celsius", "city"]);
  assert.ok(["Paris", "Rome", "Oslo"].includes(args.city as string));
  assert.equal(typeof args.celsius, "boolean");
}

const tools: OpenAI.Chat.Completions.ChatCompletionTool[] = [
  {
    type: "function",
    function: {
      name: "record_person",
      description: "Records a person",
      parameters: personSchema,
    },
  },
  {
    type: "function",
    function: { name: "get_weather", description: "The weather", parameters: weatherSchema },
  },
];

/** Asserts that a call's arguments validate against its function's schema. */
function assertArguments(name: string, args: string): void {
  const value: unknown = JSON.parse(args);
  if (name === "record_person") assertPerson(value);
  else if (name === "get_weather") assertWeather(value);
  else assert.fail(`a call of an unknown function "${name}"`);
}

interface StreamedCall {
  id: string;
  type: string;
  name: string;
  arguments: string;
}

/** A streamed answer's content, calls (assembled by `index`) and finish reason. */
async function readToolStream(
  stream: AsyncIterable<OpenAI.Chat.Completions.ChatCompletionChunk>,
): Promise<{ content: string; calls: StreamedCall[]; finish: string | null; pieces: number }> {
  let content = "";
  const calls: StreamedCall[] = [];
  let finish: string | null = null;
  let pieces = 0;
  for await (const chunk of stream) {
    const choice = chunk.choices[0];
    if (choice === undefined) continue;
    content += choice.delta.content ?? "";
    for (const delta of choice.delta.tool_calls ?? []) {
      pieces += 1;
      if (calls[delta.index] === undefined) {
        // A call's first piece carries its id, type and name.
        assert.ok(delta.id?.startsWith("call_"), "the first piece has the call's id");
        assert.equal(delta.type, "function");
        assert.ok(delta.function?.name, "the first piece has the function's name");
        calls[delta.index] = {
          id: delta.id ?? "",
          type: "function",
          name: delta.function.name,
          arguments: "",
        };
      }
      const call = calls[delta.index] as StreamedCall;
      call.arguments += delta.function?.arguments ?? "";
    }
    if (choice.finish_reason) finish = choice.finish_reason;
  }
  return { content, calls, finish, pieces };
}

describe("tools (function calling) through the encrypting proxy (local stack)", () => {
  let proxied: ProxiedStack | undefined;
  let stack: TestStack;
  let relay: RecordingRelay;
  let openai: OpenAI;
  let modelPath: string;
  /** Arguments and texts generated, which must not cross the relay in the clear. */
  const generated: string[] = [];

  before(async () => {
    modelPath = await tinyModelPath({ chatTemplate: "chatml" });
    proxied = await ProxiedStack.start({
      models: `tiny=${modelPath}`,
      env: {
        MODEL_SEQUENCES: "1",
        CONTEXT_SIZE: "2048",
        DELTA_WINDOW_MS: "0",
        // Only for the plaintext route test: the proxy's traffic stays encrypted regardless.
        ALLOW_PLAINTEXT_OPENAI: "true",
      },
      label: "openai-tools",
    });
    ({ stack, relay, openai } = proxied);
  });

  after(async () => {
    await proxied?.close();
  });

  const named = {
    model: "tiny",
    messages,
    tools,
    tool_choice: { type: "function" as const, function: { name: "record_person" } },
    max_tokens: 200,
    temperature: 0,
    seed: 7,
  };

  it("calls a named function with arguments that validate; streamed, the same call", async () => {
    const completion = await stack.explain(openai.chat.completions.create(named));
    const choice = completion.choices[0];
    assert.equal(choice?.finish_reason, "tool_calls");
    assert.equal(choice.message.content, null);
    const calls = choice.message.tool_calls ?? [];
    assert.equal(calls.length, 1);
    const call = calls[0] as OpenAI.Chat.Completions.ChatCompletionMessageFunctionToolCall;
    assert.equal(call.type, "function");
    assert.match(call.id, /^call_[A-Za-z0-9]{24}$/);
    assert.equal(call.function.name, "record_person");
    assertArguments(call.function.name, call.function.arguments);
    assert.ok((completion.usage?.completion_tokens ?? 0) > 0);
    generated.push(call.function.arguments);

    const streamed = await readToolStream(
      await openai.chat.completions.create({ ...named, stream: true }),
    );
    assert.equal(streamed.finish, "tool_calls");
    assert.equal(streamed.content, "");
    assert.equal(streamed.calls.length, 1);
    assert.equal(streamed.calls[0]?.name, "record_person");
    assert.equal(streamed.calls[0]?.arguments, call.function.arguments);
    assert.ok(streamed.pieces > 1, "the arguments arrived in several pieces");
  });

  it('calls one of the tools under "required", streamed and not alike', async () => {
    const body = { ...named, tool_choice: "required" as const, seed: 11 };
    const completion = await openai.chat.completions.create(body);
    const choice = completion.choices[0];
    assert.equal(choice?.finish_reason, "tool_calls");
    const call = choice.message
      .tool_calls?.[0] as OpenAI.Chat.Completions.ChatCompletionMessageFunctionToolCall;
    assert.ok(call !== undefined);
    assertArguments(call.function.name, call.function.arguments);
    generated.push(call.function.arguments);

    const streamed = await readToolStream(
      await openai.chat.completions.create({ ...body, stream: true }),
    );
    assert.equal(streamed.finish, "tool_calls");
    assert.deepEqual(
      streamed.calls.map((each) => [each.name, each.arguments]),
      (choice.message.tool_calls ?? []).map((each) => {
        const fn = (each as OpenAI.Chat.Completions.ChatCompletionMessageFunctionToolCall).function;
        return [fn.name, fn.arguments];
      }),
    );
  });

  it("answers after a tool result, as node-llama-cpp renders the call and its result", async () => {
    const args = { city: "Oslo", celsius: true };
    const result = { temperature: 4, sky: "grey" };
    const [expected] = await referenceTexts(modelPath, [
      {
        history: [
          { type: "system", text: `You keep records ${marker}.` },
          { type: "user", text: "Record a person, then tell me the weather." },
          {
            type: "model",
            response: [{ type: "functionCall", name: "get_weather", params: args, result }],
          },
        ],
        maxTokens: 16,
      },
    ]);
    const completion = await openai.chat.completions.create({
      model: "tiny",
      messages: [
        ...messages,
        {
          role: "assistant",
          content: null,
          tool_calls: [
            {
              id: "call_1",
              type: "function",
              function: { name: "get_weather", arguments: JSON.stringify(args) },
            },
          ],
        },
        { role: "tool", tool_call_id: "call_1", content: JSON.stringify(result) },
      ],
      tools,
      tool_choice: "none",
      max_tokens: 16,
      temperature: 0,
    });
    const choice = completion.choices[0];
    assert.equal(choice?.message.tool_calls, undefined);
    assert.ok(expected !== undefined && expected.length > 0);
    assert.equal(choice?.message.content, expected);
    generated.push(expected);
  });

  it('gives text under tool_choice "none", and with tools under "auto"', async () => {
    const none = await openai.chat.completions.create({
      ...named,
      tool_choice: "none",
      max_tokens: 12,
    });
    assert.equal(none.choices[0]?.message.tool_calls, undefined);
    assert.ok((none.choices[0]?.message.content ?? "").length > 0);
    assert.ok(["length", "stop"].includes(none.choices[0]?.finish_reason ?? ""));
    // The random model does not write the call syntax: a text answer, with the tools offered.
    const auto = await openai.chat.completions.create({
      ...named,
      tool_choice: "auto",
      max_tokens: 12,
    });
    assert.ok(["length", "stop", "tool_calls"].includes(auto.choices[0]?.finish_reason ?? ""));
    generated.push(none.choices[0]?.message.content ?? "");
  });

  it('holds the text to response_format under "none"; refuses it beside "auto"', async () => {
    const completion = await openai.chat.completions.create({
      ...named,
      tool_choice: "none",
      response_format: { type: "json_schema", json_schema: { name: "w", schema: weatherSchema } },
    });
    assertWeather(JSON.parse(completion.choices[0]?.message.content ?? ""));
    await assert.rejects(
      openai.chat.completions.create({
        ...named,
        tool_choice: "auto",
        response_format: { type: "json_object" },
      }),
      (error: unknown) =>
        error instanceof OpenAI.BadRequestError && /response_format/.test(error.message),
    );
  });

  it("refuses bad tools by the parameter's name, in OpenAI's shape", async () => {
    const refused = async (body: object, pattern: RegExp) => {
      await assert.rejects(
        openai.chat.completions.create({ ...named, ...body } as typeof named),
        (error: unknown) => {
          assert.ok(error instanceof OpenAI.BadRequestError, String(error));
          assert.equal(error.status, 400);
          assert.equal(error.type, "invalid_request_error");
          assert.match(error.message, pattern);
          return true;
        },
      );
    };
    await refused(
      { tool_choice: { type: "function", function: { name: "nope" } } },
      /tool_choice\.function\.name/,
    );
    await refused(
      {
        tools: [
          {
            type: "function",
            function: {
              name: "f",
              parameters: { type: "object", properties: { a: { type: "nope" } } },
            },
          },
        ],
        tool_choice: "required",
      },
      /tools\[0\]\.function\.parameters\.properties\.a\.type/,
    );
    await refused(
      { tools: [{ type: "function", function: { name: "bad name!" } }], tool_choice: "auto" },
      /tools\[0\]\.function\.name/,
    );
    await refused(
      {
        messages: [...messages, { role: "tool", tool_call_id: "call_x", content: "{}" }],
        tool_choice: "auto",
      },
      /messages\[2\]\.tool_call_id/,
    );
    await refused(
      {
        messages: [
          ...messages,
          {
            role: "assistant",
            content: null,
            tool_calls: [
              { id: "c1", type: "function", function: { name: "get_weather", arguments: "{" } },
            ],
          },
          { role: "tool", tool_call_id: "c1", content: "{}" },
        ],
      },
      /messages\[2\]\.tool_calls\[0\]\.function\.arguments/,
    );
    await assert.rejects(
      openai.completions.create({
        model: "tiny",
        prompt: "a",
        // @ts-expect-error: the completions route has no tools, refused by name.
        tools,
      }),
      (error: unknown) => error instanceof OpenAI.BadRequestError && /tools/.test(error.message),
    );
  });

  it("takes tools in the native request (/runsync)", async () => {
    const view = await stack.runsync({
      model: "tiny",
      messages,
      tools,
      tool_choice: { type: "function", function: { name: "get_weather" } },
      sampling_params: { max_tokens: 100, temperature: 0 },
    });
    assert.equal(view.status, "COMPLETED", view.error);
    const output = view.output ?? [];
    const final = output.at(-1) as { finish_reason?: string };
    assert.equal(final.finish_reason, "tool_calls");
    const pieces = output.flatMap(
      (chunk) => (chunk as { tool_calls?: ToolCallPiece[] }).tool_calls ?? [],
    );
    const calls = assembleToolCalls(pieces);
    assert.equal(calls.length, 1);
    assert.equal(calls[0]?.name, "get_weather");
    assertArguments("get_weather", calls[0]?.arguments ?? "");
  });

  it("serves tool calls on the plaintext /openai/v1 route too", async () => {
    const plain = new OpenAI({
      baseURL: `${stack.url}/v2/any-id/openai/v1`,
      apiKey: "x",
      maxRetries: 0,
    });
    const body = { ...named, tool_choice: "required" as const, seed: 5 };
    const completion = await plain.chat.completions.create(body);
    assert.equal(completion.choices[0]?.finish_reason, "tool_calls");
    const call = completion.choices[0]?.message
      .tool_calls?.[0] as OpenAI.Chat.Completions.ChatCompletionMessageFunctionToolCall;
    assertArguments(call.function.name, call.function.arguments);
    const streamed = await readToolStream(
      await plain.chat.completions.create({ ...body, stream: true }),
    );
    assert.equal(streamed.finish, "tool_calls");
    assert.deepEqual(
      streamed.calls.map((each) => [each.name, each.arguments]),
      [[call.function.name, call.function.arguments]],
    );
  });

  it("lets no prompt, tool, output text or arguments cross between the proxy and the pool", () => {
    const traffic = relay.traffic;
    assert.ok(relay.calls.some((call) => call.path === "/run"));
    assert.ok(!traffic.includes(marker), "no prompt text");
    assert.ok(!traffic.includes("record_person"), "no tool definitions");
    assert.ok(!traffic.includes("get_weather"), "no tool names");
    assert.ok(generated.length >= 4);
    for (const text of generated) {
      for (const piece of text.match(/[A-Za-z]{6,}/g) ?? []) {
        assert.ok(!traffic.includes(piece), "no generated text or arguments");
      }
      assert.ok(!traffic.includes(text.slice(0, 20)), "no generated text or arguments");
    }
  });
});
