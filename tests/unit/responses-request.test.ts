/**
 * Responses API bodies as chat-completions bodies, then as the pool's requests: input items as
 * messages, function calls and their outputs as assistant `tool_calls` and `tool` messages, flat
 * function tools as chat tools, `text.format` as structured output; what is refused, by name.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { type AdmissionPolicy, admitRequest } from "../../orchestrator/admission/admit-request.js";
import { FernetKey, KeyRing } from "../../shared/crypto/index.js";
import { PoolError } from "../../shared/errors/index.js";
import { jsonObjectGrammar, readOpenAiBody, readResponsesBody } from "../../shared/openai/index.js";
import { personSchema } from "../support/person-schema.js";

const marker = "RESPONSES-MARKER-41bb";
const weather = {
  type: "object",
  properties: { city: { type: "string" } },
  required: ["city"],
};

function refusal(run: () => unknown): PoolError {
  try {
    run();
  } catch (error) {
    assert.ok(error instanceof PoolError);
    assert.ok(!error.message.includes(marker), "request text leaked into the message");
    return error;
  }
  assert.fail("expected a refusal");
}

describe("Responses bodies as chat bodies", () => {
  it("map text input, instructions and sampling to the same request as chat's", () => {
    const { request, shape } = readOpenAiBody("responses", {
      model: "tiny",
      instructions: "Be brief.",
      input: "Hi there",
      max_output_tokens: 20,
      temperature: 0,
      top_p: 0.5,
      seed: 3,
      stream: true,
      store: false,
      metadata: { trace: "x" },
    });
    const chat = readOpenAiBody("chat", {
      model: "tiny",
      messages: [
        { role: "system", content: "Be brief." },
        { role: "user", content: "Hi there" },
      ],
      max_completion_tokens: 20,
      temperature: 0,
      top_p: 0.5,
      seed: 3,
    });
    assert.deepEqual(request, chat.request);
    assert.equal(shape.route, "responses");
    assert.equal(shape.stream, true);
    assert.equal(shape.includeUsage, false);
    assert.equal(shape.responses?.instructions, "Be brief.");
    assert.equal(shape.responses?.max_output_tokens, 20);
    assert.equal(shape.responses?.store, false);
    assert.deepEqual(shape.responses?.metadata, { trace: "x" });
    assert.deepEqual(shape.responses?.tools, []);
    assert.equal(shape.responses?.tool_choice, "auto");
  });

  it("map input items: messages, text parts, function calls and their outputs", () => {
    const { chat } = readResponsesBody({
      input: [
        { role: "developer", content: "Rules." },
        {
          type: "message",
          role: "user",
          content: [
            { type: "input_text", text: "Weather in " },
            { type: "input_text", text: "Paris?" },
          ],
        },
        {
          type: "message",
          role: "assistant",
          content: [{ type: "output_text", text: "Let me look.", annotations: [] }],
        },
        {
          type: "function_call",
          call_id: "call_1",
          name: "weather",
          arguments: '{"city":"Paris"}',
        },
        { type: "function_call", call_id: "call_2", name: "weather", arguments: '{"city":"Nice"}' },
        { type: "function_call_output", call_id: "call_1", output: "sunny" },
        {
          type: "function_call_output",
          call_id: "call_2",
          output: [{ type: "input_text", text: "rain" }],
        },
        { type: "function_call", call_id: "call_3", name: "weather", arguments: "{}" },
      ],
    });
    const call = (id: string, args: string) => ({
      id,
      type: "function",
      function: { name: "weather", arguments: args },
    });
    assert.deepEqual(chat.messages, [
      { role: "developer", content: "Rules." },
      { role: "user", content: "Weather in Paris?" },
      {
        role: "assistant",
        content: "Let me look.",
        tool_calls: [call("call_1", '{"city":"Paris"}'), call("call_2", '{"city":"Nice"}')],
      },
      { role: "tool", tool_call_id: "call_1", content: "sunny" },
      { role: "tool", tool_call_id: "call_2", content: "rain" },
      { role: "assistant", content: null, tool_calls: [call("call_3", "{}")] },
    ]);
  });

  it("map flat function tools, tool_choice and parallel_tool_calls to chat's shapes", () => {
    const { chat, echo } = readResponsesBody({
      input: "Weather?",
      tools: [
        {
          type: "function",
          name: "weather",
          description: "The weather in a city",
          parameters: weather,
          strict: true,
        },
        { type: "function", name: "noop", parameters: null, strict: null },
      ],
      tool_choice: { type: "function", name: "weather" },
      parallel_tool_calls: false,
    });
    assert.deepEqual(chat.tools, [
      {
        type: "function",
        function: { name: "weather", description: "The weather in a city", parameters: weather },
      },
      { type: "function", function: { name: "noop" } },
    ]);
    assert.deepEqual(chat.tool_choice, { type: "function", function: { name: "weather" } });
    assert.equal(chat.parallel_tool_calls, false);
    assert.deepEqual(echo.tool_choice, { type: "function", name: "weather" });
    assert.deepEqual(echo.tools, [
      {
        type: "function",
        name: "weather",
        description: "The weather in a city",
        parameters: weather,
        strict: true,
      },
      { type: "function", name: "noop", description: null, parameters: null, strict: null },
    ]);
    assert.equal(echo.parallel_tool_calls, false);
    for (const choice of ["auto", "none", "required"]) {
      assert.equal(readResponsesBody({ input: "x", tool_choice: choice }).chat.tool_choice, choice);
    }
  });

  it("map text.format to structured output", () => {
    const schema = readOpenAiBody("responses", {
      input: "A person",
      text: { format: { type: "json_schema", name: "person", schema: personSchema, strict: true } },
    });
    assert.deepEqual(schema.request.sampling_params, { json_schema: personSchema });
    assert.deepEqual(schema.shape.responses?.text, {
      format: { type: "json_schema", name: "person", schema: personSchema, strict: true },
      verbosity: "medium",
    });
    const object = readOpenAiBody("responses", {
      input: "JSON",
      text: { format: { type: "json_object" } },
    });
    assert.deepEqual(object.request.sampling_params, { grammar: jsonObjectGrammar });
    const text = readOpenAiBody("responses", { input: "Hi", text: { format: { type: "text" } } });
    assert.equal(text.request.sampling_params, undefined);
  });

  it("refuse what a stateless server cannot honour, by field name", () => {
    const input = marker;
    const cases: [unknown, RegExp][] = [
      [
        { input, previous_response_id: "resp_1" },
        /request\.previous_response_id: is not supported: this server keeps no responses/,
      ],
      [{ input, store: true }, /request\.store: true is not supported/],
      [{ input, background: true }, /request\.background: true is not supported/],
      [{ input, conversation: "conv_1" }, /request\.conversation: is not supported/],
      [{ input, include: ["message.output_text.logprobs"] }, /request\.include: is not supported/],
      [{ input, reasoning: { effort: "low" } }, /request\.reasoning: is not supported/],
      [{ input, truncation: "auto" }, /request\.truncation: must be "disabled"/],
      [
        { input, tools: [{ type: "web_search" }] },
        /request\.tools\[0\]\.type: only function tools/,
      ],
      [
        { input: [{ type: "item_reference", id: "msg_1" }] },
        /request\.input\[0\]\.type: "item_reference" items are not supported: this server keeps no responses/,
      ],
      [
        { input: [{ type: "reasoning", summary: [] }] },
        /request\.input\[0\]\.type: "reasoning" items are not supported/,
      ],
      [
        { input: [{ role: "user", content: [{ type: "input_image", image_url: marker }] }] },
        /request\.input\[0\]\.content/,
      ],
      [
        { input: [{ type: "function_call_output", output: marker }] },
        /request\.input\[0\]\.call_id: must be a string/,
      ],
      [{ input, tool_choice: { type: "file_search" } }, /request\.tool_choice: must be/],
      [{ input, text: { verbosity: "low" } }, /request\.text\.verbosity: is not supported/],
      [{ input, frobnicate: 1 }, /unknown field "frobnicate"/],
      [{ instructions: marker }, /request\.input: must be a string or a list of input items/],
    ];
    for (const [body, expected] of cases) {
      const error = refusal(() => readOpenAiBody("responses", body));
      assert.equal(error.code, "INVALID_REQUEST");
      assert.match(error.message, expected);
    }
  });
});

describe("admission of Responses jobs", () => {
  const policy: AdmissionPolicy = {
    keyRing: new KeyRing([FernetKey.generate()]),
    models: ["tiny"],
    limits: { maxTokensLimit: 512 },
    defaultMaxTokens: 64,
    maxRequestBytes: 64 * 1024,
    ttlSeconds: 3600,
    encryptOutput: "request",
    allowPlaintextOpenai: true,
  };

  it("takes RunPod's openai_route /v1/responses as the same task as the chat body", () => {
    const responses = admitRequest(
      {
        openai_route: "/v1/responses",
        openai_input: {
          instructions: "Be brief.",
          input: "Hi",
          max_output_tokens: 5,
          stream: true,
        },
      },
      policy,
    );
    const chat = admitRequest(
      {
        openai_route: "/v1/chat/completions",
        openai_input: {
          messages: [
            { role: "system", content: "Be brief." },
            { role: "user", content: "Hi" },
          ],
          max_tokens: 5,
        },
      },
      policy,
    );
    assert.deepEqual(
      { ...responses.task, sampling: { ...responses.task.sampling, seed: 0 } },
      { ...chat.task, sampling: { ...chat.task.sampling, seed: 0 } },
    );
    assert.equal(responses.openai?.route, "responses");
    assert.equal(responses.openai?.stream, true);
    const refused = refusal(() =>
      admitRequest(
        {
          openai_route: "/v1/responses",
          openai_input: { input: marker, previous_response_id: "r" },
        },
        policy,
      ),
    );
    assert.equal(refused.code, "INVALID_REQUEST");
    assert.match(refused.message, /previous_response_id/);
  });
});
