/**
 * Function calling on a real node-llama-cpp thread (the random-weights ChatML model): a forced
 * call's pieces coalesced by the text window (`DELTA_WINDOW_MS`), its arguments valid against the
 * schema, `finish_reason` `tool_calls`; a function without parameters called with `{}`; the prompt
 * with its documented tools counted as LlamaChat evaluates it (a second run finds it all cached);
 * and under `none` a grammar holds the text.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { ModelPool } from "../../gpu-worker/pool/model-pool.js";
import { createLogger } from "../../shared/log.js";
import {
  assembleToolCalls,
  type GenerationTask,
  type ThreadResult,
  type ToolCallPiece,
  type ToolTask,
} from "../../shared/protocol/index.js";
import { tinyModelPath } from "../support/models.js";
import { assertPerson, personSchema } from "../support/person-schema.js";
import { greedyTask } from "../support/tasks.js";

const log = createLogger("test", { level: "error" });

const functions: ToolTask["functions"] = [
  { name: "record_person", description: "Records a person", parameters: personSchema },
  { name: "clock", description: "The time" },
];

function withTools(choice: ToolTask["choice"], maxTokens = 200): GenerationTask {
  return {
    ...greedyTask([{ role: "user", content: "Record a person please." }], maxTokens),
    tools: { functions, choice, parallel: true },
  };
}

interface Ran {
  text: string;
  /** Each message's pieces, as the main thread got them. */
  messages: ToolCallPiece[][];
  result: ThreadResult;
}

async function run(pool: ModelPool, task: GenerationTask): Promise<Ran> {
  let text = "";
  const messages: ToolCallPiece[][] = [];
  const result = await pool.run(`job-${Math.random()}`, task, {
    signal: new AbortController().signal,
    onText: (piece, extras) => {
      text += piece;
      if (extras?.toolCalls !== undefined) messages.push(extras.toolCalls);
    },
  });
  return { text, messages, result };
}

describe("tool calls in a model thread", () => {
  let pool: ModelPool;

  before(async () => {
    pool = await ModelPool.start({
      model: { name: "tiny", path: await tinyModelPath({ chatTemplate: "chatml" }) },
      threads: 1,
      sequences: 1,
      llamaThreads: 1,
      contextSize: 2048,
      gpu: false,
      gpuMemoryUtilization: 0.95,
      deltaWindowMs: 40,
      log,
    });
  });

  after(async () => {
    await pool?.close();
  });

  it("streams a named call in coalesced pieces whose arguments validate", async () => {
    const ran = await run(pool, withTools({ name: "record_person" }));
    assert.equal(ran.result.finishReason, "tool_calls");
    assert.equal(ran.text, "");
    const pieces = ran.messages.flat();
    assert.ok(pieces[0]?.id?.startsWith("call_"));
    assert.equal(pieces[0]?.name, "record_person");
    const calls = assembleToolCalls(pieces);
    assert.equal(calls.length, 1);
    assertPerson(JSON.parse(calls[0]?.arguments ?? ""));
    // One message per window, not per token: fewer messages than the call's tokens.
    assert.ok(
      ran.messages.length < ran.result.completionTokens / 2,
      `${ran.messages.length} messages for ${ran.result.completionTokens} tokens`,
    );
  });

  it("calls a function without parameters with {}", async () => {
    const ran = await run(pool, withTools({ name: "clock" }));
    assert.equal(ran.result.finishReason, "tool_calls");
    const calls = assembleToolCalls(ran.messages.flat());
    assert.deepEqual(
      calls.map((call) => [call.name, call.arguments]),
      [["clock", "{}"]],
    );
  });

  it("counts the prompt with its documented tools as LlamaChat evaluates it", async () => {
    const task = withTools("required");
    const first = await run(pool, task);
    const second = await run(pool, task);
    assert.ok(first.result.promptTokens > 100, "the tools are documented in the prompt");
    assert.equal(second.result.promptTokens, first.result.promptTokens);
    // The sequence held exactly the prompt counted (and the call after it): all of it reused.
    assert.ok(
      second.result.cachedTokens >= second.result.promptTokens - 1,
      `cached ${second.result.cachedTokens} of ${second.result.promptTokens}`,
    );
    assert.deepEqual(
      assembleToolCalls(second.messages.flat()).map((call) => [call.name, call.arguments]),
      assembleToolCalls(first.messages.flat()).map((call) => [call.name, call.arguments]),
    );
  });

  it("continues after a tool result: a new call under required, text or calls under auto", async () => {
    const conversation = (choice: ToolTask["choice"]): GenerationTask => ({
      ...greedyTask(
        [
          { role: "user", content: "What time is it?" },
          {
            role: "assistant",
            content: "",
            toolCalls: [{ id: "call_1", name: "clock", arguments: "{}" }],
          },
          { role: "tool", toolCallId: "call_1", content: '{"time": "noon"}' },
        ],
        60,
      ),
      tools: { functions, choice, parallel: true },
    });
    const required = await run(pool, conversation("required"));
    assert.equal(required.result.finishReason, "tool_calls");
    const [call] = assembleToolCalls(required.messages.flat());
    assert.ok(call !== undefined);
    if (call.name === "record_person") assertPerson(JSON.parse(call.arguments));
    else assert.deepEqual([call.name, call.arguments], ["clock", "{}"]);
    const auto = await run(pool, conversation("auto"));
    assert.ok(["stop", "length", "tool_calls"].includes(auto.result.finishReason));
    assert.ok(auto.text.length > 0 || auto.messages.length > 0);
  });

  it('holds the text to a grammar under "none"', async () => {
    const task = withTools("none");
    task.sampling.grammar = { kind: "json_schema", schema: personSchema };
    const ran = await run(pool, task);
    assert.equal(ran.messages.length, 0);
    assert.equal(ran.result.finishReason, "stop");
    assertPerson(JSON.parse(ran.text));
  });
});
