import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { ConfigError, ErrorCode } from "../../shared/errors/index.js";
import { isValidModelName, parseModelsList } from "../../shared/models/model-spec.js";

const cwd = "/work/app";

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
    assert.deepEqual(parseModelsList("a.gguf", cwd), [{ name: "a", path: "/work/app/a.gguf" }]);
    assert.deepEqual(parseModelsList("../models/Qwen2.5-0.5B.Q4.gguf", cwd), [
      { name: "Qwen2.5-0.5B.Q4", path: "/work/models/Qwen2.5-0.5B.Q4.gguf" },
    ]);
  });

  it("keeps absolute paths and strips the extension in any case", () => {
    assert.deepEqual(parseModelsList("/m/Big.GGUF", cwd), [{ name: "Big", path: "/m/Big.GGUF" }]);
  });

  it("takes an explicit name from name=path", () => {
    assert.deepEqual(parseModelsList("chat=models/x.gguf", cwd), [
      { name: "chat", path: "/work/app/models/x.gguf" },
    ]);
  });

  it("parses several entries, ignoring spaces and empty entries, in order", () => {
    const models = parseModelsList("  a.gguf ,  fast = /m/b.gguf,,  sub/c.gguf , ", cwd);
    assert.deepEqual(models, [
      { name: "a", path: "/work/app/a.gguf" },
      { name: "fast", path: "/m/b.gguf" },
      { name: "c", path: "/work/app/sub/c.gguf" },
    ]);
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
