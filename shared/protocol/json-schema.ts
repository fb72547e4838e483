/**
 * The part of JSON Schema that structured output supports: what node-llama-cpp turns into a
 * grammar (`GbnfJsonSchema`), plus `anyOf` (read as `oneOf`: generation picks one branch either
 * way) and annotations that change nothing. Checked when a request is admitted, so a schema the
 * model could not be held to is refused by name instead of being silently loosened (node-llama-cpp
 * itself accepts `{"type": "nope"}` and drops keywords it does not know, such as `pattern`).
 */

/** One problem, at a path inside the schema. */
export interface JsonSchemaIssue {
  path: (string | number)[];
  message: string;
}

const immutableTypes = new Set(["string", "number", "integer", "boolean", "null"]);
const annotations = new Set([
  "description",
  "title",
  "$schema",
  "$id",
  "$comment",
  "default",
  "examples",
  "deprecated",
  "readOnly",
  "writeOnly",
]);
const keywordsByType: Record<string, readonly string[]> = {
  string: ["minLength", "maxLength", "format"],
  object: ["properties", "required", "additionalProperties", "minProperties", "maxProperties"],
  array: ["items", "prefixItems", "minItems", "maxItems"],
};
const commonKeywords = ["type", "enum", "const", "oneOf", "anyOf", "$ref", "$defs"];
const stringFormats = new Set(["date-time", "time", "date"]);
const maxDepth = 32;

/** The issues of a schema; empty when it is supported. At most 10 are reported. */
export function jsonSchemaIssues(schema: unknown): JsonSchemaIssue[] {
  const issues: JsonSchemaIssue[] = [];
  check(schema, [], new Set(), issues, 0);
  return issues.slice(0, 10);
}

function check(
  node: unknown,
  path: (string | number)[],
  outerDefs: ReadonlySet<string>,
  issues: JsonSchemaIssue[],
  depth: number,
): void {
  const fail = (message: string, at = path): void => {
    issues.push({ path: at, message });
  };
  if (depth > maxDepth) {
    fail(`is nested deeper than ${maxDepth} levels`);
    return;
  }
  if (typeof node !== "object" || node === null || Array.isArray(node)) {
    fail("must be a JSON Schema object");
    return;
  }
  const schema = node as Record<string, unknown>;
  const defs = new Set(outerDefs);
  if (schema.$defs !== undefined) {
    if (!isPlainObject(schema.$defs)) fail("must be an object of schemas", [...path, "$defs"]);
    else for (const name of Object.keys(schema.$defs)) defs.add(name);
  }
  const type = schema.type;
  const types = Array.isArray(type) ? type : type === undefined ? [] : [type];
  for (const [index, each] of types.entries()) {
    const at = Array.isArray(type) ? [...path, "type", index] : [...path, "type"];
    if (typeof each !== "string" || !(immutableTypes.has(each) || keywordsByType[each])) {
      fail(
        "must be one of string, number, integer, boolean, null, object, array (or a list of the first five)",
        at,
      );
    } else if (Array.isArray(type) && !immutableTypes.has(each)) {
      fail("a list of types may hold only string, number, integer, boolean and null", at);
    }
  }
  const allowed = new Set([
    ...commonKeywords,
    ...(types.length === 1 ? (keywordsByType[types[0] as string] ?? []) : []),
  ]);
  for (const key of Object.keys(schema)) {
    if (annotations.has(key) || allowed.has(key)) continue;
    fail(
      Object.values(keywordsByType).some((list) => list.includes(key))
        ? `"${key}" needs a matching "type"`
        : `unsupported keyword${/^[A-Za-z0-9_$]{1,40}$/.test(key) ? ` "${key}"` : ""} (supported: type, properties, required, additionalProperties, items, prefixItems, enum, const, oneOf, anyOf, $ref, $defs, minLength, maxLength, format, minItems, maxItems, minProperties, maxProperties)`,
      [...path, key],
    );
  }
  const shapes = ["type", "enum", "const", "oneOf", "anyOf", "$ref"].filter(
    (key) => schema[key] !== undefined,
  );
  if (shapes.length === 0) fail('needs one of "type", "enum", "const", "oneOf", "anyOf", "$ref"');
  if (schema.enum !== undefined) {
    if (!Array.isArray(schema.enum) || schema.enum.length === 0 || !schema.enum.every(isScalar)) {
      fail("must be a non-empty list of strings, numbers, booleans or null", [...path, "enum"]);
    }
  }
  if (schema.const !== undefined && !isScalar(schema.const)) {
    fail("must be a string, number, boolean or null", [...path, "const"]);
  }
  for (const key of ["oneOf", "anyOf"] as const) {
    const list = schema[key];
    if (list === undefined) continue;
    if (!Array.isArray(list) || list.length === 0) {
      fail("must be a non-empty list of schemas", [...path, key]);
    } else {
      for (const [index, item] of list.entries()) {
        check(item, [...path, key, index], defs, issues, depth + 1);
      }
    }
  }
  if (schema.$ref !== undefined) {
    const ref = schema.$ref;
    const name = typeof ref === "string" && ref.startsWith("#/$defs/") ? ref.slice(8) : undefined;
    if (name === undefined) fail('must be "#/$defs/<name>"', [...path, "$ref"]);
    else if (!defs.has(name)) fail("names no schema of an enclosing $defs", [...path, "$ref"]);
  }
  if (isPlainObject(schema.$defs)) {
    for (const [name, item] of Object.entries(schema.$defs)) {
      check(item, [...path, "$defs", name], defs, issues, depth + 1);
    }
  }
  for (const key of [
    "minLength",
    "maxLength",
    "minItems",
    "maxItems",
    "minProperties",
    "maxProperties",
  ]) {
    const value = schema[key];
    if (value !== undefined && !(Number.isInteger(value) && (value as number) >= 0)) {
      fail("must be a whole number >= 0", [...path, key]);
    }
  }
  if (schema.format !== undefined && !stringFormats.has(schema.format as string)) {
    fail("must be date-time, time or date", [...path, "format"]);
  }
  if (schema.properties !== undefined) {
    if (!isPlainObject(schema.properties)) {
      fail("must be an object of schemas", [...path, "properties"]);
    } else {
      for (const [name, item] of Object.entries(schema.properties)) {
        check(item, [...path, "properties", name], defs, issues, depth + 1);
      }
    }
  }
  if (schema.required !== undefined) {
    const required = schema.required;
    const names = isPlainObject(schema.properties) ? Object.keys(schema.properties) : [];
    if (!Array.isArray(required) || !required.every((name) => typeof name === "string")) {
      fail("must be a list of property names", [...path, "required"]);
    } else if (!required.every((name) => names.includes(name))) {
      fail("names a property that is not in properties", [...path, "required"]);
    }
  }
  const additional = schema.additionalProperties;
  if (additional !== undefined && typeof additional !== "boolean") {
    check(additional, [...path, "additionalProperties"], defs, issues, depth + 1);
  }
  if (schema.items !== undefined) check(schema.items, [...path, "items"], defs, issues, depth + 1);
  if (schema.prefixItems !== undefined) {
    if (!Array.isArray(schema.prefixItems))
      fail("must be a list of schemas", [...path, "prefixItems"]);
    else {
      for (const [index, item] of schema.prefixItems.entries()) {
        check(item, [...path, "prefixItems", index], defs, issues, depth + 1);
      }
    }
  }
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function isScalar(value: unknown): boolean {
  return value === null || ["string", "number", "boolean"].includes(typeof value);
}
