/**
 * Every environment variable the code reads is documented, and nothing documented is unread: the
 * names the code reads (found in its sources) equal the names in .env.example and the names in
 * the tables of docs/configuration.md (the pool's processes, the reference client and the proxy,
 * and the variables RunPod sets).
 */
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { describe, it } from "node:test";
import { packageRoot } from "../../shared/paths.js";
import { doc, tableNames } from "../support/readme.js";

const root = packageRoot();

/** Source files of the shipped code (tests and benchmarks read their own variables). */
function sources(dir: string): string[] {
  return readdirSync(path.join(root, dir), { withFileTypes: true }).flatMap((entry) => {
    const relative = path.join(dir, entry.name);
    if (entry.isDirectory()) return sources(relative);
    return entry.name.endsWith(".ts") || entry.name.endsWith(".mjs") ? [relative] : [];
  });
}

/**
 * Names read by the code: through the config readers (`readInt(env, "NAME", ...)`, `readDuration`, the client's
 * `env("NAME")`, ...) or `process.env.NAME` / `env.NAME` / `env["NAME"]`.
 */
function namesReadByCode(): Set<string> {
  const patterns = [
    /\b(?:readRaw|readVar|readInt|readEnum|readBoolean|readDuration|url|env)\(\s*(?:env,\s*)?"([A-Z][A-Z0-9_]+)"/g,
    /\b(?:process\.)?env\.([A-Z][A-Z0-9_]+)\b/g,
    /\b(?:process\.)?env\[\s*"([A-Z][A-Z0-9_]+)"\s*\]/g,
  ];
  const names = new Set<string>();
  const files = ["shared", "orchestrator", "gpu-worker", "client", "scripts"].flatMap(sources);
  for (const file of files) {
    // The test runner's own variables (REDIS_URL of the test Redis) are not the product's.
    if (/scripts\/(run-tests|redis-for-run|test-counts)\./.test(file)) continue;
    const text = readFileSync(path.join(root, file), "utf8");
    for (const pattern of patterns) {
      for (const match of text.matchAll(pattern)) names.add(match[1] ?? "");
    }
  }
  return names;
}

function envExampleNames(): string[] {
  const text = readFileSync(path.join(root, ".env.example"), "utf8");
  return [...text.matchAll(/^#?([A-Z][A-Z0-9_]+)=/gm)].map((match) => match[1] ?? "");
}

const sorted = (names: Iterable<string>) => [...new Set(names)].sort();

describe("environment variables", () => {
  const code = namesReadByCode();

  it("the search finds what the config reads (so the comparisons below are not vacuous)", () => {
    for (const name of [
      "MODELS",
      "ENCRYPTION_KEY",
      "HF_ENDPOINT",
      "RUNPOD_WEBHOOK_GET_JOB",
      "POOL_URL",
    ]) {
      assert.ok(code.has(name), `${name} not found in the sources`);
    }
    assert.ok(code.size >= 40, `only ${code.size} names found`);
  });

  it(".env.example lists exactly the variables the code reads, each once", () => {
    const listed = envExampleNames();
    assert.deepEqual(listed, [...new Set(listed)], "a variable is listed twice");
    assert.deepEqual(sorted(listed), sorted(code));
  });

  it("each variable of .env.example has a line saying what it does and its default", () => {
    const lines = readFileSync(path.join(root, ".env.example"), "utf8").split("\n");
    lines.forEach((line, index) => {
      if (!/^#?[A-Z][A-Z0-9_]+=/.test(line) || line.startsWith("#RUNPOD_")) return;
      const comment: string[] = [];
      for (let i = index - 1; i >= 0 && lines[i]?.startsWith("# "); i--)
        comment.unshift(lines[i] ?? "");
      assert.ok(comment.length > 0, `${line} has no comment above it`);
      assert.match(comment.join(" "), /Default: /, `${line}: the comment gives no default`);
    });
  });

  it("the tables of docs/configuration.md list exactly the variables the code reads", () => {
    const documented = tableNames(doc("docs/configuration.md"));
    assert.deepEqual(sorted(documented), sorted(code));
  });
});
