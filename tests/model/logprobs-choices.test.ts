/**
 * Logprobs and `n` > 1 on real node-llama-cpp threads (the model pool, as the gpu-worker drives
 * it): under greedy sampling the token loop that gives logprobs writes node-llama-cpp's own text
 * (LlamaCompletion's and LlamaChat's, as a job without logprobs does), each token's top entry is
 * the chosen token and the top probabilities sum to at most 1; `n` choices run at once on one
 * thread's sequences, differ when sampled, repeat with their seed, and a pool too small for them
 * refuses the job.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { ModelPool } from "../../gpu-worker/pool/model-pool.js";
import { createLogger } from "../../shared/log.js";
import type {
  DeltaExtras,
  GenerationTask,
  ThreadResult,
  TokenLogprob,
} from "../../shared/protocol/index.js";
import { sharedModelPath, tinyModelPath } from "../support/models.js";
import { assertPerson, personSchema } from "../support/person-schema.js";
import { referenceTexts } from "../support/reference.js";
import { greedyTask } from "../support/tasks.js";

const log = createLogger("test", { level: "warn", write: () => {} });
const prompt = "Once upon a time";
const messages = [
  { role: "system" as const, content: "You are a storyteller." },
  { role: "user" as const, content: "Tell me about the sun." },
];

interface Run {
  texts: string[];
  logprobs: TokenLogprob[][];
  result: ThreadResult;
}

describe("logprobs and n > 1 in the model thread", () => {
  let pool: ModelPool;
  let reference: string[];

  before(async () => {
    const modelPath = await tinyModelPath({ chatTemplate: "chatml" });
    reference = await referenceTexts(modelPath, [
      { prompt, maxTokens: 40 },
      { messages, maxTokens: 40 },
    ]);
    pool = await ModelPool.start({
      model: { name: "tiny", path: modelPath },
      threads: 1,
      sequences: 3,
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

  const run = async (task: GenerationTask): Promise<Run> => {
    const texts: string[] = [];
    const logprobs: TokenLogprob[][] = [];
    const result = await pool.run(`job-${Math.random()}`, task, {
      signal: new AbortController().signal,
      onText: (piece: string, extras?: DeltaExtras) => {
        const index = extras?.index ?? 0;
        texts[index] = (texts[index] ?? "") + piece;
        if (extras?.logprobs !== undefined) {
          logprobs[index] = [...(logprobs[index] ?? []), ...extras.logprobs];
        }
      },
    });
    return { texts, logprobs, result };
  };

  const assertGreedyLogprobs = (entries: TokenLogprob[] | undefined, text: string, top: number) => {
    assert.ok(entries !== undefined && entries.length > 0, "logprobs came with the text");
    assert.equal(entries.map((entry) => entry.token).join(""), text, "the tokens spell the text");
    for (const entry of entries) {
      assert.ok(entry.logprob <= 0);
      assert.equal(entry.top_logprobs.length, top);
      if (top === 0) continue;
      assert.equal(entry.top_logprobs[0]?.token, entry.token, "greedy: the top entry is chosen");
      assert.equal(entry.top_logprobs[0]?.logprob, entry.logprob);
      const sum = entry.top_logprobs.reduce((total, alt) => total + Math.exp(alt.logprob), 0);
      assert.ok(sum <= 1 + 1e-6, `top probabilities sum to ${sum}`);
      for (let i = 1; i < entry.top_logprobs.length; i += 1) {
        const [a, b] = [entry.top_logprobs[i - 1], entry.top_logprobs[i]];
        assert.ok((a?.logprob ?? 0) >= (b?.logprob ?? 0), "most likely first");
      }
      assert.deepEqual(entry.bytes, [...Buffer.from(entry.token)]);
    }
  };

  it("writes LlamaCompletion's greedy text with logprobs, top entry first", async () => {
    const plain = await run(greedyTask(prompt, 40));
    const withLogprobs = await run(greedyTask(prompt, 40, { logprobs: 5 }));
    assert.equal(plain.texts[0], reference[0]);
    assert.equal(withLogprobs.texts[0], reference[0], "the same text with logprobs");
    assert.equal(withLogprobs.result.finishReason, plain.result.finishReason);
    assert.equal(withLogprobs.result.completionTokens, plain.result.completionTokens);
    assertGreedyLogprobs(withLogprobs.logprobs[0], reference[0] ?? "", 5);
    const chosenOnly = await run(greedyTask(prompt, 40, { logprobs: 0 }));
    assertGreedyLogprobs(chosenOnly.logprobs[0], reference[0] ?? "", 0);
  });

  it("writes LlamaChat's greedy text with logprobs", async () => {
    const withLogprobs = await run(greedyTask(messages, 40, { logprobs: 3 }));
    assert.equal(withLogprobs.texts[0] ?? "", reference[1]);
    assertGreedyLogprobs(withLogprobs.logprobs[0], reference[1] ?? "", 3);
  });

  it("holds the text to a grammar as LlamaChat does, with logprobs", async () => {
    const grammar = { kind: "json_schema" as const, schema: personSchema };
    const ask = [{ role: "user" as const, content: "Give me a person" }];
    const plain = await run(greedyTask(ask, 200, { grammar }));
    const withLogprobs = await run(greedyTask(ask, 200, { grammar, logprobs: 2 }));
    assert.equal(withLogprobs.result.finishReason, "stop", "the grammar ends the text");
    assertPerson(JSON.parse(withLogprobs.texts[0] ?? ""));
    assert.equal(withLogprobs.texts[0], plain.texts[0]);
  });

  it("ends the text before a stop string, with the logprobs of what it kept", async () => {
    const full = reference[0] ?? "";
    const stop = full.slice(12, 15);
    const cut = full.slice(0, full.indexOf(stop));
    const stopped = await run(greedyTask(prompt, 40, { logprobs: 1, stop: [stop] }));
    assert.equal(stopped.texts[0] ?? "", cut);
    assert.equal(stopped.result.finishReason, "stop");
    const tokens = (stopped.logprobs[0] ?? []).map((entry) => entry.token).join("");
    assert.ok(tokens.startsWith(cut), "the kept text's tokens have their logprobs");
  });

  it("runs n choices at once, each its own, and repeats them with the seed", async () => {
    const sampled = (seed: number) =>
      greedyTask(prompt, 32, { temperature: 1, n: 3, seed, logprobs: 2 });
    const first = await run(sampled(42));
    assert.equal(first.texts.length, 3);
    assert.equal(first.result.choices?.length, 3);
    assert.deepEqual(
      first.result.choices?.map((choice) => choice.index),
      [0, 1, 2],
    );
    assert.equal(
      first.result.completionTokens,
      first.result.choices?.reduce((sum, choice) => sum + choice.completionTokens, 0),
    );
    assert.equal(new Set(first.texts).size, 3, "sampled choices differ");
    const again = await run(sampled(42));
    assert.deepEqual(again.texts, first.texts, "the same seed, the same choices");
    assert.equal(again.result.seed, 42);
    const plain = await run(greedyTask(prompt, 32, { temperature: 1, n: 3, seed: 42 }));
    assert.equal(plain.texts.length, 3);
    assert.equal(new Set(plain.texts).size, 3, "choices without logprobs differ too");
    assert.deepEqual(
      (await run(greedyTask(prompt, 32, { temperature: 1, n: 3, seed: 42 }))).texts,
      plain.texts,
      "and repeat too",
    );
  });

  it("gives a job with n choices n sequences of a thread: a job beside it waits", async () => {
    const events: string[] = [];
    const extra: number[] = [];
    pool.onExtraSequences((sequences) => extra.push(sequences));
    const hooks = (name: string) => ({
      signal: new AbortController().signal,
      onText: () => {},
      onStarted: (_thread: number, inUse: number) =>
        events.push(`${name} started, ${inUse} in use`),
    });
    const big = pool
      .run("big", greedyTask(prompt, 12, { n: 3 }), hooks("big"))
      .then(() => events.push("big ended"));
    const small = pool
      .run("small", greedyTask(prompt, 4), hooks("small"))
      .then(() => events.push("small ended"));
    await Promise.all([big, small]);
    assert.deepEqual(events, [
      "big started, 3 in use",
      "big ended",
      "small started, 1 in use",
      "small ended",
    ]);
    assert.deepEqual(extra, [2, 0], "the queue worker is told of the two extra sequences");
  });

  it("stops every choice on a cancel, and the sequences serve the next job", async () => {
    const controller = new AbortController();
    const result = await pool.run("cancelled", greedyTask(prompt, 600, { n: 2, logprobs: 1 }), {
      signal: controller.signal,
      onText: () => controller.abort(),
    });
    assert.equal(result.finishReason, "cancelled");
    assert.ok(result.choices?.every((choice) => choice.finishReason === "cancelled"));
    assert.ok(result.completionTokens < 1200, "stopped early");
    const next = await run(greedyTask(prompt, 40, { logprobs: 0 }));
    assert.equal(next.texts[0], reference[0]);
  });

  it("refuses more choices than a thread has sequences", async () => {
    await assert.rejects(run(greedyTask(prompt, 8, { n: 4 })), (error: unknown) => {
      const { code, message } = error as { code: string; message: string };
      assert.equal(code, "INVALID_REQUEST");
      assert.match(message, /sampling_params\.n: must be at most 3/);
      return true;
    });
  });
});

describe("the token loop on the shared folder's models, where there is one", () => {
  it("writes LlamaCompletion's and LlamaChat's greedy text, characters split over tokens too", async (context) => {
    const models = [
      {
        name: "stories260K.gguf",
        cases: [{ prompt: "Lily and Tom went to the park.", maxTokens: 80 }],
      },
      {
        name: "random-llama-chatml-tiny.gguf",
        cases: [
          { prompt: "abc", maxTokens: 40 },
          { messages: [{ role: "user" as const, content: "Hi there" }], maxTokens: 60 },
        ],
      },
    ];
    let ran = 0;
    for (const { name, cases } of models) {
      const modelPath = await sharedModelPath(name);
      if (modelPath === undefined) continue;
      const reference = await referenceTexts(modelPath, cases);
      const pool = await ModelPool.start({
        model: { name: "shared", path: modelPath },
        threads: 1,
        sequences: 2,
        llamaThreads: 1,
        contextSize: 512,
        gpu: false,
        gpuMemoryUtilization: 0.95,
        log,
      });
      try {
        for (const [index, item] of cases.entries()) {
          const input = "prompt" in item ? (item.prompt ?? "") : item.messages;
          for (const extra of [{ logprobs: 2 }, { n: 2 }]) {
            const texts: string[] = [];
            await pool.run(`job-${index}`, greedyTask(input, item.maxTokens, extra), {
              signal: new AbortController().signal,
              onText: (piece: string, extras?: DeltaExtras) => {
                const at = extras?.index ?? 0;
                texts[at] = (texts[at] ?? "") + piece;
              },
            });
            assert.equal(texts[0], reference[index], `${name} #${index} ${JSON.stringify(extra)}`);
            ran += 1;
          }
        }
      } finally {
        await pool.close();
      }
    }
    if (ran === 0) context.skip("no shared models folder beside this checkout");
  });
});
