/**
 * Structured output on real node-llama-cpp threads: a JSON Schema or a GBNF grammar holds the
 * tiny model's (random) text to its shape; one that cannot be compiled fails the job with
 * `INVALID_REQUEST`, naming what is wrong without quoting it, and the thread serves on.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { ModelPool } from "../../gpu-worker/pool/model-pool.js";
import { createLogger } from "../../shared/log.js";
import type { GenerationTask, GrammarSpec } from "../../shared/protocol/index.js";
import { tinyModelPath } from "../support/models.js";
import { assertPerson, personSchema } from "../support/person-schema.js";
import { greedyTask } from "../support/tasks.js";

const logs: string[] = [];
const log = createLogger("test", { level: "debug", write: (line) => logs.push(line) });

function task(grammar: GrammarSpec | undefined, chat = false): GenerationTask {
  const input = chat
    ? [{ role: "user" as const, content: "Give me a person" }]
    : "Once upon a time";
  return greedyTask(input, 200, grammar === undefined ? {} : { grammar });
}

describe("structured output in the model thread", () => {
  let pool: ModelPool;

  before(async () => {
    pool = await ModelPool.start({
      model: { name: "tiny", path: await tinyModelPath({ chatTemplate: "chatml" }) },
      threads: 1,
      sequences: 1,
      llamaThreads: 1,
      contextSize: 1024,
      gpu: false,
      gpuMemoryUtilization: 0.95,
      log,
    });
  });

  after(async () => {
    await pool?.close();
  });

  const run = async (spec: GrammarSpec | undefined, chat = false) => {
    let text = "";
    const result = await pool.run(`job-${Math.random()}`, task(spec, chat), {
      signal: new AbortController().signal,
      onText: (piece) => {
        text += piece;
      },
    });
    return { text, result };
  };

  it("holds a completion and a chat reply to a JSON Schema", async () => {
    for (const chat of [false, true]) {
      const { text, result } = await run({ kind: "json_schema", schema: personSchema }, chat);
      assert.equal(result.finishReason, "stop", "the grammar ends the text");
      assertPerson(JSON.parse(text));
    }
    const free = await run(undefined);
    assert.throws(() => JSON.parse(free.text), "without a schema the text is not JSON");
  });

  it("holds the text to a GBNF grammar", async () => {
    const { text } = await run({
      kind: "gbnf",
      text: 'root ::= "answer: " ("yes" | "no") " " [0-9] [0-9]?',
    });
    assert.match(text, /^answer: (yes|no) \d\d?$/);
  });

  it("fails a grammar llama.cpp cannot parse with INVALID_REQUEST, without quoting it", async () => {
    const secret = "zebra-rule-7731";
    await assert.rejects(run({ kind: "gbnf", text: `root ::= ${secret}` }), (error: unknown) => {
      const { code, message } = error as { code: string; message: string };
      assert.equal(code, "INVALID_REQUEST");
      assert.match(message, /request\.sampling_params\.grammar: not a GBNF grammar/);
      assert.match(message, /line 1, column 10: a rule is used but never defined/);
      assert.ok(!message.includes(secret));
      return true;
    });
    assert.ok(!logs.join("\n").includes(secret), "the grammar text is not logged");
    const after = await run({ kind: "gbnf", text: 'root ::= "ok"' });
    assert.equal(after.text, "ok", "the thread serves on");
  });
});
