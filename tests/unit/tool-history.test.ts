/**
 * Function calling inside the model thread: a task's messages as node-llama-cpp's chat history
 * (calls merged with their results by id), the JSON object taken out of generated argument
 * pieces, and function-call pieces in the thread's text windows (after the text, arguments joined).
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { toChatHistory } from "../../gpu-worker/thread/chat-history.js";
import { JsonObjectText } from "../../gpu-worker/thread/json-object-text.js";
import { TextWindows } from "../../gpu-worker/thread/text-windows.js";
import { newCallId } from "../../gpu-worker/thread/tool-calls.js";
import type { TaskMessage, ToolCallPiece } from "../../shared/protocol/index.js";

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
    const window = new TextWindows(10_000).open((text, calls) =>
      sent.push(calls === undefined ? { text } : { text, calls }),
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
    const window = new TextWindows(0).open((text, calls) =>
      sent.push(calls === undefined ? { text } : { text, calls }),
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
