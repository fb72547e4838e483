/**
 * The GBNF check that keeps grammars llama.cpp cannot parse away from it (llama.cpp prints such a
 * grammar, whole, to stderr). `tests/model/structured-output.test.ts` compares it with llama.cpp.
 */
import assert from "node:assert/strict";
import { readdir, readFile } from "node:fs/promises";
import { createRequire } from "node:module";
import path from "node:path";
import { describe, it } from "node:test";
import { gbnfProblem } from "../../shared/protocol/index.js";
import { invalidGrammars, validGrammars } from "../support/gbnf-cases.js";

describe("GBNF check", () => {
  it("accepts grammars llama.cpp parses, including node-llama-cpp's own", async () => {
    for (const grammar of validGrammars) assert.equal(gbnfProblem(grammar), undefined, grammar);
    const folder = path.join(
      path.dirname(createRequire(import.meta.url).resolve("node-llama-cpp")),
      "..",
      "llama",
      "grammars",
    );
    const files = (await readdir(folder)).filter((file) => file.endsWith(".gbnf"));
    assert.ok(files.length >= 5);
    for (const file of files) {
      assert.equal(gbnfProblem(await readFile(path.join(folder, file), "utf8")), undefined, file);
    }
  });

  it("refuses the rest, naming the place and never quoting the text", () => {
    for (const [grammar, expected] of invalidGrammars) {
      const problem = gbnfProblem(grammar);
      assert.ok(problem !== undefined, grammar);
      assert.match(problem, expected);
      assert.ok(
        !problem.includes("my_rule") && !problem.includes("foo") && !problem.includes("think"),
      );
    }
  });
});
