/**
 * The digests the model pool routes by: texts sharing a prefix share the digests of its whole
 * blocks; a chat's next turn continues what its sequence held after the previous one.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { heldDigests, inputDigests, sharedBlocks } from "../../gpu-worker/pool/prefix-affinity.js";
import { greedyTask } from "../support/tasks.js";

const long = "the dog ran to the sun ".repeat(40);

describe("prefix digests", () => {
  it("share the whole blocks of a common prefix, and nothing after a difference", () => {
    const a = inputDigests(greedyTask(`${long}and the cat`, 1));
    const b = inputDigests(greedyTask(`${long}and the bird sat`, 1));
    const shared = sharedBlocks(a, b);
    assert.equal(shared, Math.floor(long.length / 64));
    assert.equal(sharedBlocks(inputDigests(greedyTask(`x${long}`, 1)), a), 0);
  });

  it("a prompt's follow-up continues its prompt and output", () => {
    const task = greedyTask(long, 1);
    const held = heldDigests(task, "once upon a time ".repeat(8));
    const next = inputDigests(greedyTask(`${long}${"once upon a time ".repeat(8)}more`, 1));
    assert.equal(sharedBlocks(held, next), held.length);
  });

  it("a chat's next turn continues the previous turn and its reply", () => {
    const turn1 = [
      { role: "system" as const, content: long },
      { role: "user" as const, content: "Tell me about the sun." },
    ];
    const reply = "The sun is warm. ".repeat(10);
    const held = heldDigests(greedyTask(turn1, 1), reply);
    const turn2 = [
      ...turn1,
      { role: "assistant" as const, content: reply },
      { role: "user" as const, content: "And the moon?" },
    ];
    const next = inputDigests(greedyTask(turn2, 1));
    assert.ok(held.length > 10);
    assert.equal(sharedBlocks(held, next), held.length);
  });

  it("never holds the text itself", () => {
    const digests = inputDigests(greedyTask(long, 1));
    for (const digest of digests) assert.ok(!digest.includes("dog"));
  });
});
