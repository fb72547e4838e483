/**
 * The README's Python and curl examples run as written against a running stack: the code blocks
 * are taken from the README, run from a folder that holds only the key file `npm start` would
 * have made (`.data/encryption.key`), with `POOL_URL` pointing at the stack.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import { tinyModelPath } from "../support/models.js";
import { codeBlocks, readmeSection } from "../support/readme.js";
import { TestStack } from "../support/stack.js";

function missingTools(): string | false {
  const python = spawnSync("python3", ["-c", "import cryptography.fernet"], { encoding: "utf8" });
  if (python.error || python.status !== 0) return "python3 with 'cryptography' is missing";
  const curl = spawnSync("curl", ["--version"], { encoding: "utf8" });
  if (curl.error || curl.status !== 0) return "curl is missing";
  return false;
}

describe("the README's examples", { skip: missingTools() }, () => {
  const section = readmeSection("The request");
  const python = codeBlocks(section, "python").find((block) => block.includes("urllib.request"));
  const curl = codeBlocks(section, "sh").find((block) => block.includes("curl "));
  let stack: TestStack;
  const folder = mkdtempSync(path.join(os.tmpdir(), "llmpool-readme-"));
  const env = () => ({ PATH: process.env.PATH ?? "", HOME: os.homedir(), POOL_URL: stack.url });

  before(async () => {
    stack = await TestStack.start({ models: `tiny=${await tinyModelPath()}`, label: "readme" });
    mkdirSync(path.join(folder, ".data"));
    writeFileSync(path.join(folder, ".data", "encryption.key"), `${stack.key}\n`, { mode: 0o600 });
  });

  after(async () => {
    await stack?.stop();
    rmSync(folder, { recursive: true, force: true });
  });

  it("the Python client streams a completion to its end", () => {
    assert.ok(python !== undefined, "the README has no Python client example");
    writeFileSync(path.join(folder, "client.py"), python);
    const result = spawnSync("python3", ["client.py"], {
      cwd: folder,
      env: env(),
      encoding: "utf8",
    });
    assert.equal(result.status, 0, result.stderr);
    assert.match(result.stdout, /\n\[(stop|length), \d+ tokens\]\n$/);
    assert.ok(result.stdout.length > "\n[length, 64 tokens]\n".length, "text was printed");
  });

  it("the curl example gets a whole output from /runsync and a stream from /stream", () => {
    assert.ok(curl !== undefined, "the README has no curl example");
    const result = spawnSync("bash", ["-euo", "pipefail", "-c", curl], {
      cwd: folder,
      env: env(),
      encoding: "utf8",
    });
    assert.equal(result.status, 0, result.stderr);
    const [runsync = "", stream = ""] = result.stdout.trim().split("\n");
    const whole = JSON.parse(runsync) as { status: string; output: { done?: boolean }[] };
    assert.equal(whole.status, "COMPLETED");
    assert.equal(whole.output.at(-1)?.done, true);
    const polled = JSON.parse(stream) as { id: string; stream: unknown[] };
    assert.ok(polled.stream.length > 0, "the first poll of /stream brought chunks");
  });
});
