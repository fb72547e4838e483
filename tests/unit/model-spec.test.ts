import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { ConfigError, ErrorCode } from "../../shared/errors/index.js";
import type { ModelSettings } from "../../shared/models/model-settings.js";
import {
  isValidModelName,
  type ModelEntry,
  parseModelsList,
} from "../../shared/models/model-spec.js";

const cwd = "/work/app";

/** The entry a local file with no settings parses to. */
function file(name: string, path: string, settings: ModelSettings = {}): ModelEntry {
  return { name, source: { kind: "file", path }, settings };
}

/** Asserts parsing `text` fails with a ConfigError mentioning every `expected` text. */
function assertRejected(text: string, expected: readonly string[]): void {
  assert.throws(
    () => parseModelsList(text, cwd),
    (error: unknown) => {
      assert.ok(error instanceof ConfigError, `expected a ConfigError, got ${String(error)}`);
      assert.equal(error.code, ErrorCode.CONFIG_INVALID);
      for (const part of expected) {
        assert.ok(error.message.includes(part), `"${part}" missing from: ${error.message}`);
      }
      return true;
    },
  );
}

describe("parseModelsList", () => {
  it("names a bare file after its base name and resolves it against cwd", () => {
    assert.deepEqual(parseModelsList("a.gguf", cwd), [file("a", "/work/app/a.gguf")]);
    assert.deepEqual(parseModelsList("../models/Qwen2.5-0.5B.Q4.gguf", cwd), [
      file("Qwen2.5-0.5B.Q4", "/work/models/Qwen2.5-0.5B.Q4.gguf"),
    ]);
  });

  it("keeps absolute paths and strips the extension in any case", () => {
    assert.deepEqual(parseModelsList("/m/Big.GGUF", cwd), [file("Big", "/m/Big.GGUF")]);
  });

  it("takes an explicit name from name=path", () => {
    assert.deepEqual(parseModelsList("chat=models/x.gguf", cwd), [
      file("chat", "/work/app/models/x.gguf"),
    ]);
  });

  it("parses several entries, ignoring spaces and empty entries, in order", () => {
    const models = parseModelsList("  a.gguf ,  fast = /m/b.gguf,,  sub/c.gguf , ", cwd);
    assert.deepEqual(models, [
      file("a", "/work/app/a.gguf"),
      file("fast", "/m/b.gguf"),
      file("c", "/work/app/sub/c.gguf"),
    ]);
  });

  it("reads per-model settings after ?", () => {
    assert.deepEqual(
      parseModelsList(
        "chat=m/x.gguf?context=8192&sequences=8&threads=2&llama_threads=3, y.gguf",
        cwd,
      ),
      [
        file("chat", "/work/app/m/x.gguf", {
          contextSize: 8192,
          sequences: 8,
          threads: 2,
          llamaThreads: 3,
        }),
        file("y", "/work/app/y.gguf"),
      ],
    );
    assert.deepEqual(parseModelsList("/m/z.gguf?sequences=2&queue_limit=100", cwd), [
      file("z", "/m/z.gguf", { sequences: 2, queueLimit: 100 }),
    ]);
  });

  it("refuses unknown, repeated or out-of-range settings, naming the entry", () => {
    assertRejected("a.gguf?ctx=5", ["MODELS", "entry 1", '"ctx"', "context, sequences"]);
    assertRejected("a.gguf?threads=1&threads=2", ["entry 1", '"threads"', "twice"]);
    assertRejected("a.gguf?sequences=0", ['"sequences"', "[1, 256]", '"0"']);
    assertRejected("a.gguf?context=32", ['"context"', "[64, 1048576]"]);
    assertRejected("a.gguf?threads=two", ['"threads"', '"two"']);
    assertRejected("a.gguf?llama_threads", ['"llama_threads"', '""']);
    assertRejected("a.gguf?queue_limit=0", ['"queue_limit"', '"0"']);
  });

  it("returns an empty list for an empty text", () => {
    assert.deepEqual(parseModelsList(" , ", cwd), []);
  });

  it("returns frozen entries", () => {
    const [entry] = parseModelsList("a.gguf", cwd);
    assert.ok(entry !== undefined && Object.isFrozen(entry));
  });

  it("refuses the same name twice, implicit or explicit", () => {
    assertRejected("a.gguf, other/a.gguf", ["MODELS", '"a"', "twice"]);
    assertRejected("x=a.gguf, x=b.gguf", ["MODELS", '"x"', "twice"]);
    assertRejected("b=one.gguf, b.gguf", ["MODELS", '"b"']);
  });

  it("refuses a spec that is not a .gguf file, naming the variable and the entry", () => {
    assertRejected("owner/repo", ["MODELS", "entry 1", '"owner/repo"', ".gguf"]);
    assertRejected("a.gguf, m=owner/repo:Q4_K_M", ["MODELS", "entry 2", "owner/repo:Q4_K_M"]);
    assertRejected("model.bin", ["MODELS", "model.bin", ".gguf"]);
  });

  it("refuses an entry with nothing after =", () => {
    assertRejected("name=", ["MODELS", "entry 1", 'after "="']);
  });

  it("refuses invalid model names", () => {
    assertRejected("bad name=x.gguf", ["MODELS", "entry 1", '"bad name"', "letters, digits"]);
    assertRejected(":x=y.gguf", ["MODELS", '":x"', "starting with a letter or digit"]);
    assertRejected("=y.gguf", ["MODELS", "entry 1"]);
    assertRejected("a/b=y.gguf", ["MODELS", '"a/b"']);
    assertRejected(".gguf", ["MODELS", "entry 1"]);
    assertRejected(`${"n".repeat(65)}=y.gguf`, ["MODELS", "1-64 characters"]);
  });

  it("names the variable it was given", () => {
    assert.throws(
      () => parseModelsList("owner/repo", cwd, "EXTRA_MODELS"),
      (error: unknown) => error instanceof ConfigError && error.message.includes("EXTRA_MODELS"),
    );
  });
});

describe("isValidModelName", () => {
  it("accepts the safe alphabet up to 64 characters", () => {
    for (const name of ["a", "A9", "llama-3.1_8b", "0x", "n".repeat(64)]) {
      assert.ok(isValidModelName(name), name);
    }
  });

  it("refuses separators, spaces and leading punctuation", () => {
    for (const name of ["", " a", "a b", "a:b", "a/b", "-a", ".a", "_a", "a*", "n".repeat(65)]) {
      assert.ok(!isValidModelName(name), JSON.stringify(name));
    }
  });
});
