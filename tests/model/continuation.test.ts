/**
 * A job continued from the tokens an earlier attempt delivered (what another gpu-worker does when
 * the job's is lost, see `gpu-worker/thread/continue.ts`), on real node-llama-cpp threads: every
 * delta carries the ids of exactly the tokens whose text it holds, and a continuation cut after
 * any delta (a cut inside a multi-byte character, or inside a pending stop string, included: their
 * tokens were not delivered yet) gives, after the text delivered, exactly the rest of the
 * uninterrupted run's text, with its end and its token count.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { ModelPool } from "../../gpu-worker/pool/model-pool.js";
import { createLogger } from "../../shared/log.js";
import type { GenerationTask, ThreadResult } from "../../shared/protocol/index.js";
import { tinyModelPath } from "../support/models.js";
import { assertPerson, personSchema } from "../support/person-schema.js";
import { greedyTask } from "../support/tasks.js";

const log = createLogger("test", { level: "error" });

interface Delta {
  text: string;
  tokens: readonly number[] | undefined;
}

interface Run {
  deltas: Delta[];
  result: ThreadResult;
}

/** A grammar whose text needs byte tokens (no word of the tiny model's holds `é` or `ü`). */
const accented = 'root ::= "the dog é runs. the cat ü sleeps."';

describe("continuing a job from its delivered tokens", () => {
  let pool: ModelPool;
  let jobs = 0;

  before(async () => {
    pool = await ModelPool.start({
      model: { name: "tiny", path: await tinyModelPath() },
      threads: 1,
      sequences: 1,
      llamaThreads: 1,
      contextSize: 2048,
      gpu: false,
      gpuMemoryUtilization: 0.95,
      // No prompt cache: each run evaluates its prompt as the first attempt did.
      promptCache: false,
      log,
    });
  });

  after(async () => {
    await pool?.close();
  });

  async function run(task: GenerationTask, resume?: readonly number[]): Promise<Run> {
    const deltas: Delta[] = [];
    jobs += 1;
    const result = await pool.run(`job-${jobs}`, task, {
      signal: new AbortController().signal,
      onText: (text, extras) => deltas.push({ text, tokens: extras?.tokens }),
      ...(resume === undefined ? {} : { continuation: { tokens: [...resume] } }),
    });
    return { deltas, result };
  }

  /** Cuts the uninterrupted run after each of `cuts` deltas, and continues from there. */
  async function assertContinuesAt(task: GenerationTask, whole: Run, cuts: number[]) {
    const text = whole.deltas.map((delta) => delta.text).join("");
    for (const cut of cuts) {
      const delivered = whole.deltas.slice(0, cut);
      const tokens = delivered.flatMap((delta) => delta.tokens ?? []);
      const rest = await run(task, tokens);
      assert.equal(
        delivered.map((delta) => delta.text).join("") + rest.deltas.map((d) => d.text).join(""),
        text,
        `continued after delta ${cut}`,
      );
      assert.equal(rest.result.finishReason, whole.result.finishReason, `its end, cut at ${cut}`);
      assert.equal(rest.result.completionTokens, whole.result.completionTokens, `tokens, ${cut}`);
      for (const delta of rest.deltas) assert.ok(delta.tokens !== undefined, "ids go on");
    }
  }

  it("gives every delta the ids of its tokens, and goes on greedily from an early or late cut", async () => {
    // Long enough for a replay in one batch to drift (it did after ~1,100 tokens): each replayed
    // token takes a decode step of its own, as it was generated.
    const task = greedyTask("the dog", 1500);
    const whole = await run(task);
    assert.equal(whole.result.finishReason, "length");
    for (const delta of whole.deltas) {
      assert.ok(delta.tokens !== undefined && delta.tokens.length > 0, "a delta names its tokens");
    }
    assert.equal(
      whole.deltas.reduce((sum, delta) => sum + (delta.tokens?.length ?? 0), 0),
      1500,
      "the ids of every token whose text was delivered",
    );
    const n = whole.deltas.length;
    await assertContinuesAt(task, whole, [1, Math.floor(n * 0.8), n - 1]);
  });

  it("restores a grammar's state, and cuts inside a multi-byte character", async () => {
    const task = greedyTask("the dog", 100, { grammar: { kind: "gbnf", text: accented } });
    const whole = await run(task);
    const text = whole.deltas.map((delta) => delta.text).join("");
    assert.equal(text, "the dog é runs. the cat ü sleeps.");
    // `é` takes two byte tokens: the first is held until the second completes the character, so
    // a cut after the delta before it falls inside the character.
    const accent = whole.deltas.findIndex((delta) => delta.text.includes("é"));
    assert.ok(accent > 0);
    assert.ok((whole.deltas[accent]?.tokens?.length ?? 0) >= 2, "é came with both its tokens");
    await assertContinuesAt(
      task,
      whole,
      whole.deltas.map((_, index) => index).filter((index) => index > 0),
    );
  });

  it("restores a JSON Schema's grammar at any cut: the same valid object", async () => {
    const task = greedyTask("the dog", 200, {
      grammar: { kind: "json_schema", schema: personSchema },
    });
    const whole = await run(task);
    assertPerson(JSON.parse(whole.deltas.map((delta) => delta.text).join("")));
    const n = whole.deltas.length;
    const cuts = [...new Set([1, 2, Math.floor(n / 3), Math.floor(n / 2), n - 2, n - 1])];
    await assertContinuesAt(
      task,
      whole,
      cuts.filter((cut) => cut > 0 && cut < n),
    );
  });

  it("cuts inside a pending stop string: its tokens were not delivered", async () => {
    // `s.` begins in ` runs` and ends in `.`: ` runs` is held back until the stop is found.
    const task = greedyTask("the dog", 100, {
      grammar: { kind: "gbnf", text: accented },
      stop: ["s."],
    });
    const whole = await run(task);
    assert.equal(whole.deltas.map((delta) => delta.text).join(""), "the dog é run");
    assert.equal(whole.result.finishReason, "stop");
    const cuts = whole.deltas.map((_, index) => index).filter((index) => index > 0);
    const text = whole.deltas.map((delta) => delta.text).join("");
    for (const cut of cuts) {
      const delivered = whole.deltas.slice(0, cut);
      const rest = await run(
        task,
        delivered.flatMap((delta) => delta.tokens ?? []),
      );
      assert.equal(
        delivered.map((delta) => delta.text).join("") + rest.deltas.map((d) => d.text).join(""),
        text,
        `continued after delta ${cut}`,
      );
      assert.equal(rest.result.finishReason, "stop");
    }
  });
});
