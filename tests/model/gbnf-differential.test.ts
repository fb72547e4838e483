/**
 * Our GBNF check against llama.cpp itself, over hand-written cases and seeded random mutations of
 * them: every grammar the check lets through, llama.cpp takes — its parser (which would print a
 * grammar it refuses, request data, to the process's stderr) and its left-recursion check alike.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { createSeededRandom } from "../../gpu-worker/models/gguf/seeded-random.js";
import { gbnfProblem } from "../../shared/protocol/index.js";
import { invalidGrammars, validGrammars } from "../support/gbnf-cases.js";

const probe = fileURLToPath(new URL("../support/gbnf-native-probe.js", import.meta.url));

/** For each grammar: whether llama.cpp parsed it, and whether its parser printed an error. */
async function native(grammars: string[]): Promise<{ parsed: boolean; printed: boolean }[]> {
  const child = spawn(process.execPath, [probe], { stdio: ["pipe", "pipe", "pipe"] });
  let stdout = "";
  let stderr = "";
  child.stdout.setEncoding("utf8").on("data", (text: string) => {
    stdout += text;
  });
  child.stderr.setEncoding("utf8").on("data", (text: string) => {
    stderr += text;
  });
  child.stdin.end(JSON.stringify(grammars));
  // A grammar llama.cpp takes very long over would hang the test: stop the probe instead.
  const timer = setTimeout(() => child.kill("SIGKILL"), 120_000);
  const code = await new Promise<number | null>((resolve) => child.once("close", resolve));
  clearTimeout(timer);
  assert.equal(code, 0, stderr.slice(-2000));
  const parsed = JSON.parse(stdout) as boolean[];
  const segments = stderr.split(/^@@case \d+\n/m).slice(1);
  assert.equal(segments.length, grammars.length);
  return parsed.map((ok, index) => ({
    parsed: ok,
    printed: (segments[index] ?? "").includes("error parsing grammar"),
  }));
}

function mutations(count: number, seed: number): string[] {
  const seeded = createSeededRandom(seed);
  const random = () => seeded.next();
  const alphabet = ' "[]()|*+?{}.,-^\\\n#:=ab1_';
  const out: string[] = [];
  for (let round = 0; round < count; round += 1) {
    const chars = [...(validGrammars[Math.floor(random() * validGrammars.length)] as string)];
    for (let edits = 1 + Math.floor(random() * 3); edits > 0; edits -= 1) {
      const at = Math.floor(random() * (chars.length + 1));
      const pick = alphabet[Math.floor(random() * alphabet.length)] as string;
      const kind = random();
      if (kind < 0.4) chars.splice(at, 1);
      else if (kind < 0.8) chars.splice(at, 0, pick);
      else chars.splice(at, 1, pick);
    }
    out.push(chars.join(""));
  }
  return out;
}

describe("GBNF check against llama.cpp", () => {
  it("agrees with llama.cpp on the hand-written cases", async () => {
    const refusable = invalidGrammars
      .map(([grammar]) => grammar)
      // Stricter than llama.cpp on purpose: NUL, token references, huge repetitions.
      .filter((grammar) => !/\0|<|3000/.test(grammar));
    const results = await native([...validGrammars, ...refusable]);
    results.slice(0, validGrammars.length).forEach((result, index) => {
      assert.ok(result.parsed && !result.printed, validGrammars[index]);
    });
    results.slice(validGrammars.length).forEach((result, index) => {
      const grammar = refusable[index] as string;
      assert.ok(!result.parsed, grammar);
      // A missing root and left recursion are found after parsing, and reported through the log
      // callback, not printed.
      assert.equal(
        result.printed,
        grammar !== 'a ::= "x"' && !/root "a"|ws\*/.test(grammar),
        grammar,
      );
    });
  });

  it("passes no mutated grammar that llama.cpp's parser refuses", async () => {
    const grammars = mutations(400, Number(process.env.FUZZ_SEED ?? 7));
    const results = await native(grammars);
    let refusedByBoth = 0;
    for (const [index, grammar] of grammars.entries()) {
      const result = results[index] as { parsed: boolean; printed: boolean };
      if (gbnfProblem(grammar) === undefined) {
        assert.ok(
          result.parsed,
          `passed by the check, refused by llama.cpp: ${JSON.stringify(grammar)}`,
        );
      } else if (result.printed) {
        refusedByBoth += 1;
      }
    }
    assert.ok(refusedByBoth > 50, `the mutations do produce bad grammars (${refusedByBoth})`);
  });
});
