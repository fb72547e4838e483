/**
 * Sampling is random: identical requests sent together at a temperature above 0, with no seed,
 * return different texts (each job draws its own seed; before, node-llama-cpp seeded every job
 * with the current second, so a burst sampled one text). Each final chunk reports the job's seed,
 * and sending the same request with that seed repeats the text (one job at a time: batched
 * generation is not bit-identical). The real stack, the generated tiny model.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { isFinalChunk, type StreamChunk } from "../../shared/protocol/index.js";
import { tinyModelPath } from "../support/models.js";
import { type JobView, TestStack, textOf } from "../support/stack.js";

function finalOf(view: JobView): Extract<StreamChunk, { done: true }> {
  assert.equal(view.status, "COMPLETED", JSON.stringify(view.error));
  const final = view.output?.find(isFinalChunk);
  assert.ok(final !== undefined, "no final chunk");
  return final;
}

describe("sampling seeds", () => {
  let stack: TestStack;

  before(async () => {
    stack = await TestStack.start({
      models: `tiny=${await tinyModelPath()}`,
      env: { MODEL_SEQUENCES: "4" },
      label: "seed",
    });
  });

  after(async () => {
    await stack?.stop();
  });

  const request = (seed?: number) => ({
    prompt: "Once upon a time",
    sampling_params: { max_tokens: 24, temperature: 1, ...(seed === undefined ? {} : { seed }) },
  });

  it("gives four identical requests sent together four texts and four seeds", async () => {
    const views = await Promise.all([1, 2, 3, 4].map(() => stack.runsync(request())));
    const texts = views.map((view) => textOf(view.output ?? []));
    const seeds = views.map((view) => finalOf(view).seed);
    assert.ok(
      seeds.every((seed) => Number.isInteger(seed)),
      `seeds: ${seeds.join(", ")}`,
    );
    assert.equal(new Set(seeds).size, 4, `seeds: ${seeds.join(", ")}`);
    assert.equal(new Set(texts).size, 4, "identical requests sampled the same text");
  });

  it("repeats a job's text when its reported seed is sent back", async () => {
    const first = await stack.runsync(request());
    const { seed } = finalOf(first);
    assert.ok(seed !== undefined);
    const again = await stack.runsync(request(seed));
    assert.equal(finalOf(again).seed, seed);
    assert.equal(textOf(again.output ?? []), textOf(first.output ?? []));
  });
});
