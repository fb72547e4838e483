/**
 * Function calling inside the model thread: a task's messages as node-llama-cpp's chat history
 * (calls merged with their results by id), the functions and the chat wrapper for each
 * `tool_choice`, the JSON object taken out of generated argument pieces, and function-call pieces
 * in the thread's text windows (after the text, arguments joined).
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { ChatMLChatWrapper } from "node-llama-cpp";
import { toChatHistory } from "../../gpu-worker/thread/chat-history.js";
import { JsonObjectText } from "../../gpu-worker/thread/json-object-text.js";
import { TextWindows } from "../../gpu-worker/thread/text-windows.js";
import { chatTools, newCallId } from "../../gpu-worker/thread/tool-calls.js";
import type { TaskMessage, ToolCallPiece, ToolTask } from "../../shared/protocol/index.js";

describe("toChatHistory", () => {
  it("keeps plain chats as before, ending with an open model response", () => {
    assert.deepEqual(
      toChatHistory([
        { role: "system", content: "s" },
        { role: "user", content: "u" },
      ]),
      [
        { type: "system", text: "s" },
        { type: "user", text: "u" },
        { type: "model", response: [] },
      ],
    );
    assert.deepEqual(
      toChatHistory([
        { role: "user", content: "u" },
        { role: "assistant", content: "a" },
      ]),
      [
        { type: "user", text: "u" },
        { type: "model", response: ["a"] },
      ],
    );
  });

  it("puts calls in the model response with the results of their tool messages, by id", () => {
    const messages: TaskMessage[] = [
      { role: "user", content: "u" },
      {
        role: "assistant",
        content: "Looking.",
        toolCalls: [
          { id: "b", name: "clock", arguments: "{}" },
          { id: "a", name: "get_weather", arguments: '{"city":"Oslo"}' },
        ],
      },
      // Answered out of order: matched by id, not by place.
      { role: "tool", toolCallId: "a", content: '{"sky":"grey"}' },
      { role: "tool", toolCallId: "b", content: "noon" },
      { role: "assistant", content: "Grey at noon." },
      { role: "user", content: "Thanks" },
    ];
    assert.deepEqual(toChatHistory(messages), [
      { type: "user", text: "u" },
      {
        type: "model",
        response: [
          "Looking.",
          { type: "functionCall", name: "clock", params: {}, result: "noon" },
          {
            type: "functionCall",
            name: "get_weather",
            params: { city: "Oslo" },
            result: { sky: "grey" },
          },
          "Grey at noon.",
        ],
      },
      { type: "user", text: "Thanks" },
      { type: "model", response: [] },
    ]);
  });

  it("continues the model response after the last tool result", () => {
    const history = toChatHistory([
      { role: "user", content: "u" },
      { role: "assistant", content: "", toolCalls: [{ id: "a", name: "f", arguments: "{}" }] },
      { role: "tool", toolCallId: "a", content: "42" },
    ]);
    assert.deepEqual(history, [
      { type: "user", text: "u" },
      { type: "model", response: [{ type: "functionCall", name: "f", params: {}, result: 42 }] },
    ]);
  });
});

describe("JsonObjectText", () => {
  it("takes exactly the object from pieces, leaving out what comes after it", () => {
    const text = new JsonObjectText();
    const pieces = ["{", '\n\t"a": "}{\\"', '",', ' "b": [1, {"c": ', "2}]", "\n}", "\n\n", ")"];
    const taken = pieces.map((piece) => text.take(piece)).join("");
    assert.equal(taken, '{\n\t"a": "}{\\"", "b": [1, {"c": 2}]\n}');
    assert.deepEqual(JSON.parse(taken), { a: '}{"', b: [1, { c: 2 }] });
    assert.equal(text.done, true);
    assert.equal(text.take("more"), "");
  });

  it("skips what comes before the object", () => {
    const text = new JsonObjectText();
    assert.equal(text.take(" ("), "");
    assert.equal(text.done, false);
    assert.equal(text.take('{"x":1}) '), '{"x":1}');
  });
});

describe("tool-call pieces in the text windows", () => {
  it("sends pieces after the text waiting, joins arguments, and keeps later text after them", () => {
    const sent: { text: string; calls?: ToolCallPiece[] }[] = [];
    const window = new TextWindows(10_000).open((text, extras) =>
      sent.push(extras?.toolCalls === undefined ? { text } : { text, calls: extras.toolCalls }),
    );
    window.push("first");
    window.push("Let me");
    window.push(" see.");
    window.pushToolCall({ index: 0, id: "call_1", name: "f" });
    window.pushToolCall({ index: 0, arguments: '{"a"' });
    window.pushToolCall({ index: 0, arguments: ":1}" });
    window.pushToolCall({ index: 1, id: "call_2", name: "g" });
    window.pushToolCall({ index: 1, arguments: "{}" });
    window.push("after");
    window.close();
    assert.deepEqual(sent, [
      { text: "first" },
      {
        text: "Let me see.",
        calls: [
          { index: 0, id: "call_1", name: "f", arguments: '{"a":1}' },
          { index: 1, id: "call_2", name: "g", arguments: "{}" },
        ],
      },
      { text: "after" },
    ]);
  });

  it("sends a piece alone at once when the window allows", () => {
    const sent: { text: string; calls?: ToolCallPiece[] }[] = [];
    const window = new TextWindows(0).open((text, extras) =>
      sent.push(extras?.toolCalls === undefined ? { text } : { text, calls: extras.toolCalls }),
    );
    window.pushToolCall({ index: 0, id: "call_1", name: "f" });
    assert.deepEqual(sent, [{ text: "", calls: [{ index: 0, id: "call_1", name: "f" }] }]);
    window.close();
  });
});

describe("newCallId", () => {
  it("gives OpenAI's form, a new one each time", () => {
    const ids = new Set(Array.from({ length: 100 }, () => newCallId()));
    assert.equal(ids.size, 100);
    for (const id of ids) assert.match(id, /^call_[A-Za-z0-9]{24}$/);
  });
});

describe("chatTools", () => {
  const wrapper = new ChatMLChatWrapper();
  const functions: ToolTask["functions"] = [
    {
      name: "get_weather",
      description: "The weather",
      parameters: {
        type: "object",
        properties: { city: { anyOf: [{ type: "string" }, { type: "null" }] } },
      },
    },
    { name: "clock" },
  ];
  const history = [
    { type: "user" as const, text: "u" },
    { type: "model" as const, response: [] },
  ];
  const tools = (choice: ToolTask["choice"], parallel = true) =>
    chatTools(wrapper, { functions, choice, parallel }, () => {});

  it("offers nothing and keeps the wrapper without tools or under none", () => {
    for (const none of [chatTools(wrapper, undefined, () => {}), tools("none")]) {
      assert.equal(none.chatWrapper, wrapper);
      assert.equal(none.documented, undefined);
      assert.deepEqual(none.options, {});
    }
  });

  it('offers every function under "auto", with the model\'s own wrapper', () => {
    const auto = tools("auto");
    assert.equal(auto.chatWrapper, wrapper);
    assert.ok("functions" in auto.options);
    assert.deepEqual(Object.keys(auto.options.functions), ["get_weather", "clock"]);
    // anyOf is read as oneOf, as for json_schema.
    assert.deepEqual(auto.options.functions.get_weather?.params, {
      type: "object",
      properties: { city: { oneOf: [{ type: "string" }, { type: "null" }] } },
    });
    assert.equal(auto.options.maxParallelFunctionCalls, undefined);
    const one = tools("auto", false);
    assert.equal("functions" in one.options && one.options.maxParallelFunctionCalls, 1);
  });

  it("forces a call of the named function, every function still documented", () => {
    const named = tools({ name: "clock" });
    assert.notEqual(named.chatWrapper, wrapper);
    assert.ok("functions" in named.options);
    assert.deepEqual(Object.keys(named.options.functions), ["clock"]);
    const state = named.chatWrapper.generateContextState({
      chatHistory: history,
      availableFunctions: named.options.functions,
    });
    assert.deepEqual(state.functionCall, { initiallyEngaged: true, disengageInitiallyEngaged: [] });
    const prompt = state.contextText.toString();
    assert.match(prompt, /function get_weather/);
    assert.match(prompt, /function clock/);
    // The rendering is the model's wrapper's, with the tools documented.
    const own = wrapper.generateContextState({
      chatHistory: history,
      availableFunctions: tools("auto").documented,
      documentFunctionParams: true,
    });
    assert.equal(prompt, own.contextText.toString());
  });

  it('forces a call of any function under "required"', () => {
    const required = tools("required");
    assert.ok("functions" in required.options);
    assert.deepEqual(Object.keys(required.options.functions), ["get_weather", "clock"]);
    const state = required.chatWrapper.generateContextState({ chatHistory: history });
    assert.equal(state.functionCall?.initiallyEngaged, true);
  });
});
