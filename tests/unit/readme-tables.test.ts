/**
 * The documentation's tables against the code, so that a new setting or error code cannot ship
 * undocumented: every variable the configuration reads has a row in docs/configuration.md (the
 * pool's table, or RunPod's table for the `RUNPOD_*` ones the platform sets), and every error code
 * a job can end with has a row in the error table of docs/errors.md.
 */
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { ErrorCode } from "../../shared/errors/index.js";

const root = fileURLToPath(new URL("../../../", import.meta.url));
const docFile = (file: string) => readFile(`${root}${file}`, "utf8");
const hasRow = (text: string, name: string) => text.includes(`\n| \`${name}\` |`);

/** Codes of the processes themselves (exit paths), not of jobs: not in the job error table. */
const processCodes = new Set<string>([
  ErrorCode.CONFIG_INVALID,
  ErrorCode.REDIS_UNAVAILABLE,
  ErrorCode.INSUFFICIENT_MEMORY,
]);

describe("documentation tables", () => {
  it("document every variable the configuration reads", async () => {
    const source = await readFile(`${root}shared/config/load-config.ts`, "utf8");
    const names = new Set(
      [...source.matchAll(/read(?:Int|Var|Raw|Enum|Boolean)\(\s*env,\s*"([A-Z0-9_]+)"/g)].map(
        (match) => match[1] as string,
      ),
    );
    assert.ok(names.has("ALLOW_PLAINTEXT_OPENAI") && names.size > 30, "the variables were found");
    const text = await docFile("docs/configuration.md");
    // HUGGINGFACE_HUB_CACHE is documented in HF_HUB_CACHE's row, as its older name.
    const missing = [...names].filter(
      (name) => !hasRow(text, name) && name !== "HUGGINGFACE_HUB_CACHE",
    );
    assert.deepEqual(missing, []);
  });

  it("document every error code a job can end with", async () => {
    const text = await docFile("docs/errors.md");
    const missing = Object.values(ErrorCode).filter(
      (code) => !processCodes.has(code) && !hasRow(text, code),
    );
    assert.deepEqual(missing, []);
  });
});
