import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { HeldText } from "../../gpu-worker/thread/held-text.js";
import { Lockstep } from "../../gpu-worker/thread/lockstep.js";
import type { TokenLogprob } from "../../shared/protocol/index.js";

const entry = (token: string): TokenLogprob => ({
  token,
  logprob: -1,
  bytes: [...Buffer.from(token)],
  top_logprobs: [],
});

function collect(stops: string[], trimEnd = false) {
  const out: { text: string; tokens: string[] }[] = [];
  const held = new HeldText(stops, trimEnd, (text, logprobs) =>
    out.push({ text, tokens: logprobs.map((e) => e.token) }),
  );
  const add = (text: string) => held.add(text, [entry(text)]);
  return { out, held, add, text: () => out.map((piece) => piece.text).join("") };
}

describe("HeldText: text with logprobs past stop strings", () => {
  it("sends each piece with its logprobs when no stop string can start in it", () => {
    const { out, add } = collect([]);
    assert.equal(add("Once"), false);
    assert.equal(add(" upon"), false);
    assert.deepEqual(out, [
      { text: "Once", tokens: ["Once"] },
      { text: " upon", tokens: [" upon"] },
    ]);
  });

  it("holds back what may begin a stop string, and cuts the text where one begins", () => {
    const { out, add, text } = collect(["END"]);
    add("a b");
    add(" E");
    assert.equal(text(), "a b", "' E' may begin END: held");
    add("x");
    assert.equal(text(), "a b Ex", "not END after all");
    add(" yE");
    assert.equal(add("ND more"), true, "END across two pieces ends the text");
    assert.equal(text(), "a b Ex y");
    assert.deepEqual(
      out.at(-1),
      { text: " y", tokens: [" yE"] },
      "the cut piece keeps its logprobs",
    );
  });

  it("sends what waits at the end, trailing whitespace dropped with trimEnd", () => {
    const plain = collect(["XYZ"]);
    plain.add("ab X");
    plain.held.end();
    assert.equal(plain.text(), "ab X");
    const trimmed = collect([], true);
    trimmed.add("{}");
    trimmed.add("  ");
    assert.equal(trimmed.text(), "{}");
    trimmed.held.end();
    assert.equal(trimmed.text(), "{}");
  });
});

describe("Lockstep: choices in step", () => {
  it("lets all go only once every choice still running has arrived, in index order", async () => {
    const step = new Lockstep(3);
    const order: number[] = [];
    const arrivals = [2, 0].map((index) => step.arrive(index).then(() => order.push(index)));
    await new Promise((resolve) => setImmediate(resolve));
    assert.deepEqual(order, [], "choice 1 has not arrived");
    step.leave();
    await Promise.all(arrivals);
    assert.deepEqual(order, [0, 2]);
  });
});
