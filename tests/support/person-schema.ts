/** A JSON Schema for structured-output tests, and a hand-written check of it (no schema library). */
import assert from "node:assert/strict";

export const personSchema = {
  type: "object",
  properties: {
    name: { type: "string", maxLength: 16 },
    age: { type: "integer" },
    pet: { enum: ["cat", "dog", "none"] },
    tags: { type: "array", items: { type: "boolean" }, maxItems: 3 },
  },
  required: ["name", "age", "pet", "tags"],
  additionalProperties: false,
};

/** Asserts that `value` validates against {@link personSchema}. */
export function assertPerson(value: unknown): void {
  assert.ok(typeof value === "object" && value !== null && !Array.isArray(value));
  const person = value as Record<string, unknown>;
  assert.deepEqual(Object.keys(person).sort(), ["age", "name", "pet", "tags"]);
  assert.equal(typeof person.name, "string");
  assert.ok((person.name as string).length <= 16);
  assert.ok(Number.isInteger(person.age));
  assert.ok(["cat", "dog", "none"].includes(person.pet as string));
  assert.ok(Array.isArray(person.tags) && person.tags.length <= 3);
  for (const tag of person.tags as unknown[]) assert.equal(typeof tag, "boolean");
}
