/**
 * The documentation's client examples run as written, against the local API and against RunPod.
 * The code blocks are taken from where they are documented (the request's in docs/api.md, the
 * clients' in docs/clients.md) and run from a folder laid out as the project folder they are
 * written for (the key file `npm start` would have made in `.data/`, `dist/` and `node_modules/`
 * linked): first against a stack's local API (`POOL_URL`), then against a stand-in for RunPod's
 * hosted API (tests/fakes/runpod-platform.ts) in front of the same code in RunPod worker mode, with
 * what a RunPod user sets (`POOL_URL=<…>/v2/<endpoint id>`, `RUNPOD_API_KEY`, the endpoint's
 * `ENCRYPTION_KEY`). The OpenAI examples go through the real proxy (`npm run proxy`'s entry point)
 * started against each; their address `127.0.0.1:8080` is replaced by the proxy's. The Python
 * `runpod` and `openai` examples run where those packages are installed.
 */
import assert from "node:assert/strict";
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import { packageRoot } from "../../shared/paths.js";
import { freePort } from "../../shared/redis/index.js";
import { FakeRunpodPlatform } from "../fakes/runpod-platform.js";
import { tinyModelPath } from "../support/models.js";
import { codeBlocks, docSection } from "../support/readme.js";
import { TestStack } from "../support/stack.js";

const userApiKey = "readme-user-api-key";

function missingTools(): string | false {
  const python = spawnSync("python3", ["-c", "import cryptography.fernet"], { encoding: "utf8" });
  if (python.error || python.status !== 0) return "python3 with 'cryptography' is missing";
  const curl = spawnSync("curl", ["--version"], { encoding: "utf8" });
  if (curl.error || curl.status !== 0) return "curl is missing";
  return false;
}

function missingPythonModule(module: string): string | false {
  const found = spawnSync("python3", ["-c", `import ${module}`], { encoding: "utf8" });
  return found.status === 0 ? false : `the Python package "${module}" is not installed`;
}

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs a command to its end without blocking this process (the fake platform lives here). */
function run(command: string, args: string[], cwd: string, env: Record<string, string>) {
  return new Promise<Run>((resolve, reject) => {
    const child = spawn(command, args, { cwd, env, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.setEncoding("utf8").on("data", (text: string) => {
      stdout += text;
    });
    child.stderr.setEncoding("utf8").on("data", (text: string) => {
      stderr += text;
    });
    const timer = setTimeout(() => child.kill("SIGKILL"), 120_000);
    child.once("error", reject);
    child.once("close", (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/** One code block of a section of a documentation file, found by what it holds. */
function block(file: string, section: string, language: string, holds: string): string {
  const found = codeBlocks(docSection(file, section), language).find((text) =>
    text.includes(holds),
  );
  assert.ok(found !== undefined, `${file}'s "${section}" has no ${language} block with ${holds}`);
  return found;
}

/** A pool to run the examples against: its environment for them, and the proxy in front of it. */
interface Target {
  env: Record<string, string>;
  proxyUrl: string;
  /** Whether `/stream` waits for chunks (the local API) or answers at once (RunPod's). */
  longPoll: boolean;
}

for (const kind of ["the local API", "a RunPod endpoint"] as const) {
  describe(`the documentation's client examples against ${kind}`, { skip: missingTools() }, () => {
    const folder = mkdtempSync(path.join(os.tmpdir(), "llmpool-readme-"));
    let stack: TestStack;
    let platform: FakeRunpodPlatform | undefined;
    let proxy: ChildProcess | undefined;
    let target: Target;

    /** Writes a documentation block into the folder and runs it there. */
    const runBlock = (file: string, text: string, command: string, args: string[] = []) => {
      writeFileSync(path.join(folder, file), text);
      return run(command, [...args, file], folder, {
        PATH: process.env.PATH ?? "",
        HOME: os.homedir(),
        ...target.env,
      });
    };
    const viaProxy = (text: string) => text.replaceAll("http://127.0.0.1:8080", target.proxyUrl);

    before(async () => {
      const modelPath = await tinyModelPath({ chatTemplate: "chatml" });
      const env = { CONTEXT_SIZE: "1024", MODEL_SEQUENCES: "2" };
      let poolEnv: Record<string, string>;
      if (kind === "the local API") {
        stack = await TestStack.start({ models: `demo=${modelPath}`, env, label: "readme" });
        // The key comes from the key file, as after `npm start`.
        poolEnv = { POOL_URL: stack.url };
      } else {
        platform = await FakeRunpodPlatform.start({
          apiKey: "worker-key",
          holdMs: 300,
          userApiKey,
        });
        // Named otherwise than `npm start`'s demo model, as a real endpoint's model would be.
        stack = await TestStack.start({
          models: `story=${modelPath}`,
          runpod: platform.env(),
          env,
          label: "readme-rp",
        });
        poolEnv = {
          POOL_URL: platform.hostedUrl,
          RUNPOD_API_KEY: userApiKey,
          ENCRYPTION_KEY: stack.key,
        };
      }
      mkdirSync(path.join(folder, ".data"));
      writeFileSync(path.join(folder, ".data", "encryption.key"), `${stack.key}\n`, {
        mode: 0o600,
      });
      for (const linked of ["dist", "node_modules"]) {
        symlinkSync(path.join(packageRoot(), linked), path.join(folder, linked));
      }
      const port = await freePort();
      const started = spawn(
        process.execPath,
        [
          path.join(packageRoot(), "dist/client/proxy/main.js"),
          "--listen",
          `127.0.0.1:${port}`,
          "--url",
          poolEnv.POOL_URL ?? "",
          "--quiet",
        ],
        {
          env: { PATH: process.env.PATH ?? "", ENCRYPTION_KEY: stack.key, ...poolEnv },
          stdio: ["ignore", "ignore", "pipe"],
        },
      );
      proxy = started;
      let proxyLog = "";
      await new Promise<void>((resolve, reject) => {
        started.stderr.setEncoding("utf8").on("data", (text: string) => {
          proxyLog += text;
          if (proxyLog.includes("OpenAI-compatible proxy on")) resolve();
        });
        started.once("exit", () => reject(new Error(`the proxy exited:\n${proxyLog}`)));
      });
      target = {
        env: poolEnv,
        proxyUrl: `http://127.0.0.1:${port}`,
        longPoll: kind === "the local API",
      };
    });

    after(async () => {
      if (proxy?.exitCode === null) {
        const exited = new Promise((resolve) => proxy?.once("exit", resolve));
        proxy.kill("SIGTERM");
        await exited;
      }
      await stack?.stop();
      await platform?.close();
      rmSync(folder, { recursive: true, force: true });
    });

    it("The request: the Python client streams a completion to its end", async () => {
      const python = block("docs/api.md", "The request", "python", "urllib.request");
      const result = await runBlock("client.py", python, "python3");
      assert.equal(result.code, 0, result.stderr);
      assert.match(result.stdout, /\n\[(stop|length), \d+ tokens\]\n$/);
      assert.ok(result.stdout.length > "\n[length, 64 tokens]\n".length, "text was printed");
    });

    it("The request: curl gets a whole output from /runsync and a stream from /stream", async () => {
      const curl = block("docs/api.md", "The request", "sh", "curl ");
      const result = await runBlock("request.sh", curl, "bash", ["-euo", "pipefail"]);
      assert.equal(result.code, 0, result.stderr);
      const [runsync = "", stream = ""] = result.stdout.trim().split("\n");
      const whole = JSON.parse(runsync) as { status: string; output: { done?: boolean }[] };
      assert.equal(whole.status, "COMPLETED");
      assert.equal(whole.output.at(-1)?.done, true);
      const polled = JSON.parse(stream) as { status: string; stream: unknown[] };
      assert.ok(Array.isArray(polled.stream), stream);
      // RunPod's /stream answers at once: the job may not have produced anything yet.
      if (target.longPoll) assert.ok(polled.stream.length > 0, "the first poll brought chunks");
    });

    it("Clients, curl: /runsync gives the whole output", async () => {
      const curl = block("docs/clients.md", "curl", "sh", "/runsync");
      const result = await runBlock("runsync.sh", curl, "bash", ["-euo", "pipefail"]);
      assert.equal(result.code, 0, result.stderr);
      const whole = JSON.parse(result.stdout) as {
        status: string;
        output: { delta?: string; done?: boolean }[];
      };
      assert.equal(whole.status, "COMPLETED");
      assert.equal(whole.output.at(-1)?.done, true);
      assert.ok(
        whole.output.some((chunk) => (chunk.delta ?? "") !== ""),
        "text was generated",
      );
    });

    it("Clients, runpod-sdk: runSync, then run and stream with encrypted output", async () => {
      const sdk = block("docs/clients.md", "runpod-sdk (JavaScript)", "js", "runpod-sdk");
      const result = await runBlock("sdk-example.mjs", sdk, process.execPath);
      assert.equal(result.code, 0, result.stderr);
      // runSync's status and text, then the stream's text, then the job's status. A sampled text
      // may hold any character (a new line too) or be empty (an end token drawn first): the two
      // texts together are checked, decrypted (no token printed).
      const out = result.stdout;
      assert.ok(out.startsWith("COMPLETED "), `runSync's status: ${out.slice(0, 12)}`);
      const statusAt = out.indexOf("{\n  id:");
      assert.ok(statusAt > 0, "the job's status printed after the texts");
      const texts = out.slice("COMPLETED ".length, statusAt);
      assert.ok(texts.trim() !== "", "runSync's and the stream's text");
      assert.ok(!texts.includes("gAAAA"), "the stream's text, decrypted");
      const after = out.slice(statusAt);
      assert.match(after, /status: 'COMPLETED'/, "the job's status");
      assert.match(after, /jobs: \{/, "the endpoint's health");
    });

    it("Clients, runpod-python: run_sync, then run and stream", {
      skip: missingPythonModule("runpod"),
    }, async () => {
      const python = block("docs/clients.md", "runpod-python", "python", "import runpod");
      const result = await runBlock("runpod-example.py", python, "python3");
      assert.equal(result.code, 0, result.stderr);
      const [sync = "", streamed = ""] = result.stdout.split("\n");
      assert.ok(sync.length > 0 && streamed.length > 0, result.stdout);
    });

    it("Clients, curl through the proxy: a chat completion and a streamed completion", async () => {
      const curl = block("docs/clients.md", "curl", "sh", "127.0.0.1:8080");
      const result = await runBlock("proxy.sh", viaProxy(curl), "bash", ["-euo", "pipefail"]);
      assert.equal(result.code, 0, result.stderr);
      // The chat completion's JSON (no newline after it), then the stream's events.
      const eventsAt = result.stdout.indexOf("data: ");
      assert.ok(eventsAt > 0, result.stdout);
      const completion = JSON.parse(result.stdout.slice(0, eventsAt)) as {
        object: string;
        choices: unknown[];
      };
      assert.equal(completion.object, "chat.completion");
      assert.equal(completion.choices.length, 1);
      const events = result.stdout.slice(eventsAt);
      assert.match(events, /"object":"text_completion"/);
      assert.match(events, /data: \[DONE\]\n/);
    });

    it("Clients, openai (JavaScript) through the proxy: models, a stream, a tool call, structured output", async () => {
      const openai = block(
        "docs/clients.md",
        "openai (JavaScript), through the proxy",
        "js",
        'from "openai"',
      );
      const result = await runBlock("openai-example.mjs", viaProxy(openai), process.execPath);
      assert.equal(result.code, 0, result.stderr);
      const models = kind === "the local API" ? "[ 'demo' ]" : "[ 'default' ]";
      assert.ok(result.stdout.startsWith(`${models}\n`), result.stdout);
      assert.match(result.stdout, /completion_tokens: \d+/, "the stream's usage");
      assert.match(result.stdout, /\nget_weather\n/, "the tool call's function");
      // The tiny model's person: a name and an integer (a long one reads as Infinity).
      // util.inspect quotes a name holding ' with double quotes, one holding both with backticks.
      assert.match(result.stdout, /\{ name: (['"`]).*\1, age: [^\n]+ \}\n$/, "the parsed person");
    });

    it("Clients, the Responses API through the proxy: a response, then a stream", async () => {
      const example = block(
        "docs/clients.md",
        "The Responses API, through the proxy",
        "js",
        "responses.create",
      );
      const result = await runBlock("responses-example.mjs", viaProxy(example), process.execPath);
      assert.equal(result.code, 0, result.stderr);
      assert.match(result.stdout, /^(completed|incomplete) /, "the response's status first");
      assert.match(result.stdout, /output_tokens: \d+/, "the response's usage");
      assert.match(
        result.stdout,
        /\n (completed|incomplete) \d+\n$/,
        "the stream's final response",
      );
    });

    it("Clients, openai (Python) through the proxy", {
      skip: missingPythonModule("openai"),
    }, async () => {
      const python = block(
        "docs/clients.md",
        "openai (Python), through the proxy",
        "python",
        "from openai import OpenAI",
      );
      const result = await runBlock("openai-example.py", viaProxy(python), "python3");
      assert.equal(result.code, 0, result.stderr);
    });
  });
}
