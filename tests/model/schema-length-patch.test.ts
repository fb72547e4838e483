/**
 * The "json-schema-string-length-in-characters" patch (patches/patches.mjs): a JSON Schema
 * string's `maxLength`/`minLength` count characters (code points) in node-llama-cpp's check of a
 * parsed value, as in the grammar it generates, not UTF-16 code units. Checked on
 * `LlamaJsonSchemaGrammar.parse`, the same check as that of function call arguments: these
 * assertions fail on the unpatched library (20 emoji were "40 characters"). A string with U+FFFD
 * (bytes that were not UTF-8, which the grammar counts its own way) is left to the grammar.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { getLlama, type Llama, LlamaJsonSchemaGrammar } from "node-llama-cpp";

const schema = {
  type: "object",
  properties: { city: { type: "string", minLength: 2, maxLength: 20 } },
  required: ["city"],
} as const;

describe("JSON Schema string lengths in characters", () => {
  let llama: Llama;
  let grammar: LlamaJsonSchemaGrammar<typeof schema>;

  before(async () => {
    llama = await getLlama({ gpu: false });
    grammar = new LlamaJsonSchemaGrammar(llama, schema);
  });

  after(async () => {
    await llama?.dispose();
  });

  it("takes 20 characters outside the BMP (40 UTF-16 units) under maxLength 20", () => {
    const city = "🌍".repeat(20);
    assert.equal(city.length, 40);
    assert.deepEqual(grammar.parse(JSON.stringify({ city })), { city });
  });

  it("still refuses 21 characters, and one under minLength 2", () => {
    assert.throws(() => grammar.parse(JSON.stringify({ city: "🌍".repeat(21) })), /at most 20/);
    assert.throws(() => grammar.parse(JSON.stringify({ city: "🌍" })), /at least 2/);
    assert.deepEqual(grammar.parse(JSON.stringify({ city: "Oslo" })), { city: "Oslo" });
  });

  it("leaves to the grammar a string with bytes that were not UTF-8 (U+FFFD)", () => {
    // One 4-byte sequence the grammar took as one character, four replacement characters here.
    const city = `${"x".repeat(19)}\uFFFD\uFFFD\uFFFD\uFFFD`;
    assert.deepEqual(grammar.parse(JSON.stringify({ city })), { city });
  });
});
