/**
 * Function calling at the edges: the native request's tool checks (each refusal naming the
 * parameter), the task built from it, OpenAI chat bodies mapped to it, and OpenAI's answer shaped
 * from streamed tool-call pieces (`delta.tool_calls` chunks, `message.tool_calls`).
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { OpenAiAnswer, readOpenAiBody } from "../../shared/openai/index.js";
import {
  assembleToolCalls,
  describeIssues,
  generationRequestSchema,
  type StreamChunk,
  toGenerationTask,
} from "../../shared/protocol/index.js";

const schema = generationRequestSchema({ maxTokensLimit: 1000 });
const MARKER = "TOOL-SECRET-MARKER-9d2f";

const weather = {
  type: "function",
  function: {
    name: "get_weather",
    description: "The weather",
    parameters: {
      type: "object",
      properties: { city: { type: "string" } },
      required: ["city"],
    },
  },
};
const clock = { type: "function", function: { name: "clock" } };
const user = { role: "user", content: `What is the weather? ${MARKER}` };
const call = {
  id: "call_a",
  type: "function",
  function: { name: "get_weather", arguments: '{"city":"Oslo"}' },
};

function refusalOf(request: unknown): string {
  const result = schema.safeParse(request);
  assert.equal(result.success, false, `expected ${JSON.stringify(request)} to be refused`);
  const message = result.success ? "" : describeIssues(result.error.issues);
  assert.ok(!message.includes(MARKER), "request text leaked into the message");
  return message;
}

describe("tools in the native request", () => {
  it("accepts tools, a choice, and a conversation with calls and their results", () => {
    const request = {
      messages: [
        user,
        { role: "assistant", content: null, tool_calls: [call] },
        { role: "tool", tool_call_id: "call_a", content: '{"sky":"grey"}' },
        { role: "assistant", content: "Grey." },
        { role: "user", content: "And the time?" },
      ],
      tools: [weather, clock],
      tool_choice: { type: "function", function: { name: "clock" } },
      parallel_tool_calls: false,
    };
    const parsed = schema.parse(request);
    const task = toGenerationTask(parsed, "tiny", { maxTokens: 8, seed: () => 1 });
    assert.deepEqual(task.tools, {
      functions: [
        {
          name: "get_weather",
          description: "The weather",
          parameters: weather.function.parameters,
        },
        { name: "clock" },
      ],
      choice: { name: "clock" },
      parallel: false,
    });
    assert.equal(task.input.kind, "chat");
    const messages = task.input.kind === "chat" ? task.input.messages : [];
    assert.deepEqual(messages[1], {
      role: "assistant",
      content: "",
      toolCalls: [{ id: "call_a", name: "get_weather", arguments: '{"city":"Oslo"}' }],
    });
    assert.deepEqual(messages[2], {
      role: "tool",
      content: '{"sky":"grey"}',
      toolCallId: "call_a",
    });
  });

  it("has no tools in the task without tools; tool_choice defaults to auto", () => {
    const plain = toGenerationTask(schema.parse({ messages: [user] }), "tiny", {
      maxTokens: 8,
      seed: () => 1,
    });
    assert.equal(plain.tools, undefined);
    const auto = toGenerationTask(schema.parse({ messages: [user], tools: [clock] }), "tiny", {
      maxTokens: 8,
      seed: () => 1,
    });
    assert.equal(auto.tools?.choice, "auto");
    assert.equal(auto.tools?.parallel, true);
  });

  it("refuses bad tools, naming the parameter", () => {
    const cases: [unknown, RegExp][] = [
      [
        {
          messages: [user],
          tools: [weather],
          tool_choice: { type: "function", function: { name: "nope" } },
        },
        /request\.tool_choice\.function\.name: names no function of "tools"/,
      ],
      [{ messages: [user], tool_choice: "required" }, /request\.tool_choice: needs "tools"/],
      [
        { messages: [user], tools: [{ type: "function", function: { name: "no spaces" } }] },
        /request\.tools\[0\]\.function\.name: must be 1 to 64/,
      ],
      [
        { messages: [user], tools: [clock, clock] },
        /request\.tools\[1\]\.function\.name: is the name of an earlier tool/,
      ],
      [
        {
          messages: [user],
          tools: [
            {
              type: "function",
              function: {
                name: "f",
                parameters: { type: "object", properties: { a: { type: "nope" } } },
              },
            },
          ],
        },
        /request\.tools\[0\]\.function\.parameters\.properties\.a\.type/,
      ],
      [
        {
          messages: [user],
          tools: [{ type: "function", function: { name: "f", parameters: { type: "string" } } }],
        },
        /request\.tools\[0\]\.function\.parameters\.type: must be "object"/,
      ],
      [{ messages: [user], tools: [] }, /request\.tools: must hold at least one tool/],
      [{ prompt: "hi", tools: [clock] }, /request\.tools: needs "messages"/],
      [
        {
          messages: [user],
          tools: [weather],
          sampling_params: { json_schema: { type: "object" } },
        },
        /request\.sampling_params\.json_schema: cannot be combined with tools under tool_choice "auto"/,
      ],
      [
        { messages: [user, { role: "tool", tool_call_id: "call_x", content: "{}" }] },
        /request\.messages\[1\]\.tool_call_id: answers no unanswered tool call/,
      ],
      [
        { messages: [user, { role: "assistant", content: null, tool_calls: [call] }] },
        /request\.messages\[1\]\.tool_calls\[0\]\.id: has no "tool" message answering it/,
      ],
      [
        {
          messages: [
            user,
            {
              role: "assistant",
              tool_calls: [{ ...call, function: { name: "f", arguments: "[1]" } }],
            },
            { role: "tool", tool_call_id: "call_a", content: "{}" },
          ],
        },
        /request\.messages\[1\]\.tool_calls\[0\]\.function\.arguments: must be a string holding a JSON object/,
      ],
      [
        { messages: [{ role: "tool", content: "{}" }] },
        /request\.messages\[0\]\.tool_call_id: is required/,
      ],
      [
        { messages: [{ role: "user", content: "x", tool_calls: [call] }] },
        /request\.messages\[0\]\.tool_calls: is only for assistant messages/,
      ],
      [
        { messages: [{ role: "user", content: null }] },
        /request\.messages\[0\]\.content: must be a string/,
      ],
    ];
    for (const [request, expected] of cases) assert.match(refusalOf(request), expected);
  });

  it('takes a grammar beside tools under "none" and "required"', () => {
    for (const choice of ["none", "required"]) {
      const result = schema.safeParse({
        messages: [user],
        tools: [weather],
        tool_choice: choice,
        sampling_params: { json_schema: { type: "object" } },
      });
      assert.equal(result.success, true, choice);
    }
  });
});

describe("tools on OpenAI's chat route", () => {
  it("maps tools, tool_choice, parallel_tool_calls and tool messages field by field", () => {
    const { request } = readOpenAiBody("chat", {
      messages: [
        user,
        {
          role: "assistant",
          content: null,
          tool_calls: [{ ...call, extra: 1 }],
        },
        { role: "tool", tool_call_id: "call_a", content: [{ type: "text", text: "{}" }] },
      ],
      tools: [{ ...weather, function: { ...weather.function, strict: true } }],
      tool_choice: "required",
      parallel_tool_calls: false,
    });
    assert.deepEqual(request.tools, [weather]);
    assert.equal(request.tool_choice, "required");
    assert.equal(request.parallel_tool_calls, false);
    assert.deepEqual(request.messages?.[1], { role: "assistant", content: "", tool_calls: [call] });
    assert.deepEqual(request.messages?.[2], {
      role: "tool",
      content: "{}",
      tool_call_id: "call_a",
    });
    assert.equal(schema.safeParse(request).success, true);
  });

  it('drops tool_choice "none" without tools, as no tools at all', () => {
    const { request } = readOpenAiBody("chat", { messages: [user], tool_choice: "none" });
    assert.equal(request.tool_choice, undefined);
    assert.equal(request.tools, undefined);
  });

  it('refuses a JSON response_format beside tools under "auto", naming response_format', () => {
    assert.throws(
      () =>
        readOpenAiBody("chat", {
          messages: [user],
          tools: [weather],
          response_format: { type: "json_object" },
        }),
      /request\.response_format: cannot be combined with tools/,
    );
  });

  it("refuses tools on the completions route", () => {
    assert.throws(
      () => readOpenAiBody("completion", { prompt: "x", tools: [weather] }),
      /request\.tools: is not supported on \/v1\/completions/,
    );
  });
});

describe("tool calls in OpenAI's answer", () => {
  const chunks: StreamChunk[] = [
    { seq: 0, delta: "Let me see." },
    {
      seq: 1,
      delta: "",
      tool_calls: [{ index: 0, id: "call_1", name: "get_weather", arguments: '{"ci' }],
    },
    { seq: 2, delta: "", tool_calls: [{ index: 0, arguments: 'ty":"Oslo"}' }] },
    { seq: 3, delta: "", tool_calls: [{ index: 1, id: "call_2", name: "clock", arguments: "{}" }] },
    {
      seq: 4,
      done: true,
      finish_reason: "tool_calls",
      usage: { prompt_tokens: 3, completion_tokens: 9 },
      timings: { queue_ms: 0, load_ms: 0, ttft_ms: 1, total_ms: 2 },
    },
  ];

  it("streams delta.tool_calls keyed by index, after the text, and finish_reason tool_calls", () => {
    const answer = new OpenAiAnswer({ route: "chat", stream: true, includeUsage: false }, "j", "m");
    const events = chunks.flatMap((chunk) => answer.events(chunk)) as {
      choices: { delta: Record<string, unknown>; finish_reason: string | null }[];
    }[];
    const deltas = events.map((event) => event.choices[0]?.delta);
    assert.deepEqual(deltas[1], { content: "Let me see." });
    assert.deepEqual(deltas[2], {
      tool_calls: [
        {
          index: 0,
          id: "call_1",
          type: "function",
          function: { name: "get_weather", arguments: '{"ci' },
        },
      ],
    });
    assert.deepEqual(deltas[3], {
      tool_calls: [{ index: 0, function: { arguments: 'ty":"Oslo"}' } }],
    });
    assert.equal(events.at(-1)?.choices[0]?.finish_reason, "tool_calls");
  });

  it("gives message.tool_calls whole, with the text as content", () => {
    const answer = new OpenAiAnswer(
      { route: "chat", stream: false, includeUsage: false },
      "j",
      "m",
    );
    const complete = answer.complete(chunks) as {
      choices: { message: Record<string, unknown>; finish_reason: string }[];
    };
    assert.deepEqual(complete.choices[0]?.message, {
      role: "assistant",
      content: "Let me see.",
      tool_calls: [
        {
          id: "call_1",
          type: "function",
          function: { name: "get_weather", arguments: '{"city":"Oslo"}' },
        },
        { id: "call_2", type: "function", function: { name: "clock", arguments: "{}" } },
      ],
    });
    assert.equal(complete.choices[0]?.finish_reason, "tool_calls");
    const callsOnly = answer.complete(chunks.slice(1)) as typeof complete;
    assert.equal(callsOnly.choices[0]?.message.content, null);
  });

  it("assembles pieces by index", () => {
    assert.deepEqual(
      assembleToolCalls([
        { index: 0, id: "a", name: "f", arguments: "{" },
        { index: 1, id: "b", name: "g" },
        { index: 0, arguments: "}" },
        { index: 1, arguments: "{}" },
      ]),
      [
        { id: "a", name: "f", arguments: "{}" },
        { id: "b", name: "g", arguments: "{}" },
      ],
    );
  });
});
