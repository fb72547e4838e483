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

  it("refuses a spec that is neither a .gguf file nor a Hugging Face repo", () => {
    assertRejected("model.bin", ["MODELS", "entry 1", "model.bin", ".gguf", "owner/repo"]);
    assertRejected("a.gguf, ./m/model.bin", ["MODELS", "entry 2", "./m/model.bin", ".gguf"]);
    assertRejected("/abs/model", ["MODELS", "/abs/model", ".gguf"]);
    assertRejected("owner/repo/weights.bin", ["MODELS", '"weights.bin" is not a .gguf file']);
    assertRejected("owner/repo/../x.gguf", ["MODELS", "not a plain path"]);
    assertRejected("owner/repo:Q4 K", ["MODELS", "not a Hugging Face spec", '"./"']);
    assertRejected("-owner/repo", ["MODELS", "not a Hugging Face spec"]);
    assertRejected("owner/repo@", ["MODELS", "not a Hugging Face spec"]);
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
      () => parseModelsList("model.bin", cwd, "EXTRA_MODELS"),
      (error: unknown) => error instanceof ConfigError && error.message.includes("EXTRA_MODELS"),
    );
  });
});

describe("parseModelsList with Hugging Face specs", () => {
  const hub = (
    name: string,
    source: { repo: string; revision?: string; file?: string; quant?: string },
    settings: ModelSettings = {},
  ): ModelEntry => ({
    name,
    source: { kind: "hub", revision: "main", ...source },
    settings,
  });

  it("reads owner/repo, named after the repo", () => {
    assert.deepEqual(parseModelsList("Qwen/Qwen2.5-0.5B-Instruct-GGUF", cwd), [
      hub("Qwen2.5-0.5B-Instruct-GGUF", { repo: "Qwen/Qwen2.5-0.5B-Instruct-GGUF" }),
    ]);
  });

  it("reads :QUANT (upper-cased), @revision, a file path, a name and settings", () => {
    assert.deepEqual(
      parseModelsList(
        "a/b:q8_0, c=a/b@v1.0:Q4_K_M?sequences=2, p=a/b@0123abc/sub/dir/m-Q2_K.gguf, z=a/b/m.GGUF",
        cwd,
      ),
      [
        hub("b", { repo: "a/b", quant: "Q8_0" }),
        hub("c", { repo: "a/b", revision: "v1.0", quant: "Q4_K_M" }, { sequences: 2 }),
        hub("p", { repo: "a/b", revision: "0123abc", file: "sub/dir/m-Q2_K.gguf" }),
        hub("z", { repo: "a/b", file: "m.GGUF" }),
      ],
    );
  });

  it("tells local files from repos by the text alone", () => {
    const [local, nested, dotted, repoFile, repo] = parseModelsList(
      "models/x.gguf, ./a/b/c.gguf, ../up/y.gguf, owner/repo/c.gguf, owner/repo.v2",
      cwd,
    );
    assert.deepEqual(local?.source, { kind: "file", path: "/work/app/models/x.gguf" });
    assert.deepEqual(nested?.source, { kind: "file", path: "/work/app/a/b/c.gguf" });
    assert.deepEqual(dotted?.source, { kind: "file", path: "/work/up/y.gguf" });
    assert.deepEqual(repoFile?.source, {
      kind: "hub",
      repo: "owner/repo",
      revision: "main",
      file: "c.gguf",
    });
    assert.equal(repoFile?.name, "repo");
    assert.deepEqual(repo?.source, { kind: "hub", repo: "owner/repo.v2", revision: "main" });
  });

  it("names a local split model without its part suffix", () => {
    assert.equal(parseModelsList("/m/big-Q4_K_M-00001-of-00003.gguf", cwd)[0]?.name, "big-Q4_K_M");
  });

  it("refuses two specs of one repo without names", () => {
    assertRejected("a/b:Q4_K_M, a/b:Q8_0", ["MODELS", '"b"', "twice", "name=spec"]);
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
