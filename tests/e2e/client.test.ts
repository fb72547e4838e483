/**
 * The reference client (`client/cli/main.js`) run as a user runs it, as a child process,
 * against the real stack: the orchestrator and a gpu-worker started from their compiled entry
 * points, on real Redis (a unique prefix) and a generated tiny model.
 */
import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import http from "node:http";
import os from "node:os";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { FernetKey } from "../../shared/crypto/index.js";
import { freePort } from "../../shared/redis/index.js";
import { tinyModelPath } from "../support/models.js";
import { TestStack } from "../support/stack.js";
import { waitFor } from "../support/wait-for.js";

const distRoot = fileURLToPath(new URL("../../", import.meta.url));
const entryPoint = (part: string) => path.join(distRoot, part, "main.js");
const clientEntry = entryPoint("client/cli");

interface ClientRun {
  code: number | null;
  stdout: string;
  stderr: string;
}

interface ClientOptions {
  /** The client's whole environment besides PATH and HOME: nothing leaks in from the test's. */
  env?: Record<string, string>;
  /** Called with the child once its stdout first has data. */
  onOutput?: (child: ChildProcess) => void;
  /** Called with all of stderr so far, each time more comes. */
  onStderr?: (stderr: string) => void;
  /** Written to the client's standard input, which is then closed (at once when absent). */
  stdin?: string;
}

/** Runs the client to its end (killed after 60 s). */
function runClient(args: readonly string[], options: ClientOptions = {}): Promise<ClientRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [clientEntry, ...args], {
      env: { PATH: process.env.PATH ?? "", HOME: os.homedir(), ...options.env },
      stdio: ["pipe", "pipe", "pipe"],
    });
    child.stdin.end(options.stdin);
    let stdout = "";
    let stderr = "";
    child.stdout.setEncoding("utf8");
    child.stderr.setEncoding("utf8");
    child.stdout.on("data", (text: string) => {
      if (stdout === "") options.onOutput?.(child);
      stdout += text;
    });
    child.stderr.on("data", (text: string) => {
      stderr += text;
      options.onStderr?.(stderr);
    });
    const timer = setTimeout(() => child.kill("SIGKILL"), 60_000);
    child.once("error", reject);
    child.once("close", (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/**
 * A stand-in for RunPod's hosted API in front of the stack: routes under `/v2/<endpoint>`, a
 * Bearer API key, and `/stream` answering at once (no long poll), as the hosted API does.
 */
async function startHostedLikeProxy(stackUrl: string, apiKey: string) {
  const base = "/v2/e2e-endpoint";
  const seen = { streamPolls: 0, answers: [] as string[] };
  const server = http.createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on("data", (chunk: Buffer) => chunks.push(chunk));
    request.on("end", async () => {
      const reply = (status: number, body: string) =>
        response.writeHead(status, { "content-type": "application/json" }).end(body);
      if (request.headers.authorization !== `Bearer ${apiKey}`) {
        return reply(401, JSON.stringify({ error: "Unauthorized" }));
      }
      const url = new URL(request.url ?? "/", "http://proxy");
      if (!url.pathname.startsWith(`${base}/`)) return reply(404, "{}");
      const target = new URL(stackUrl + url.pathname.slice(base.length));
      if (url.pathname.startsWith(`${base}/stream/`)) {
        seen.streamPolls += 1;
        target.searchParams.set("wait", "0");
      }
      const body = Buffer.concat(chunks);
      const answer = await fetch(target, {
        method: request.method ?? "GET",
        ...(body.length > 0 ? { body, headers: { "content-type": "application/json" } } : {}),
      });
      const text = await answer.text();
      seen.answers.push(text);
      reply(answer.status, text);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address();
  const port = typeof address === "object" && address !== null ? address.port : 0;
  return {
    url: `http://127.0.0.1:${port}${base}`,
    seen,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

const greedy16 = ["--max-tokens", "16", "--temperature", "0"];

describe("reference client against the real stack", { timeout: 300_000 }, () => {
  let stack: TestStack;
  let tempDir: string;
  /** The client's environment for the stack's key. */
  let keyEnv: Record<string, string>;
  const withUrl = (...args: string[]) => [...args, "--url", stack.url];

  before(async () => {
    for (const part of ["orchestrator", "gpu-worker", "client/cli"]) {
      if (!existsSync(entryPoint(part))) {
        throw new Error(`${entryPoint(part)} is missing: run \`npm run build\` first`);
      }
    }
    tempDir = await mkdtemp(path.join(os.tmpdir(), "client-e2e-"));
    stack = await TestStack.start({ models: `tiny=${await tinyModelPath()}`, label: "client" });
    // DATA_DIR points at an empty folder, so no local key file of this checkout can stand in.
    keyEnv = { ENCRYPTION_KEY: stack.key, DATA_DIR: tempDir };
  });

  after(async () => {
    await stack?.stop();
    if (tempDir !== undefined) await rm(tempDir, { recursive: true, force: true });
  });

  it("streams the generated text, the same twice under greedy sampling", async () => {
    const first = await runClient(withUrl("Once upon a time", ...greedy16), { env: keyEnv });
    assert.equal(first.code, 0, first.stderr);
    assert.ok(first.stdout.trim().length > 0, "no text on stdout");
    assert.ok(first.stdout.endsWith("\n"), "the text ends with a newline");
    assert.match(
      first.stderr,
      /^status=COMPLETED finish_reason=(stop|length) prompt_tokens=\d+ cached_tokens=\d+ completion_tokens=\d+ queue_ms=\d+ load_ms=\d+ ttft_ms=\d+ total_ms=\d+ seed=\d+ job=\S+\n$/,
    );
    assert.doesNotMatch(first.stderr, /warning/);

    const second = await runClient(withUrl("Once upon a time", ...greedy16, "--quiet"), {
      env: keyEnv,
    });
    assert.equal(second.code, 0, second.stderr);
    assert.equal(second.stdout, first.stdout);
    assert.equal(second.stderr, "", "--quiet prints no summary");
  });

  it("--json prints each chunk as a JSON line, numbered from 0, ending with the done chunk", async () => {
    const text = await runClient(withUrl("Once upon a time", ...greedy16), { env: keyEnv });
    const json = await runClient(withUrl("Once upon a time", ...greedy16, "--json"), {
      env: keyEnv,
    });
    assert.equal(json.code, 0, json.stderr);
    const chunks = json.stdout
      .trimEnd()
      .split("\n")
      .map((line) => JSON.parse(line) as Record<string, unknown>);
    assert.ok(chunks.length >= 2, "at least one delta and the done chunk");
    assert.deepEqual(
      chunks.map((chunk) => chunk.seq),
      chunks.map((_, index) => index),
    );
    const done = chunks.at(-1) as {
      done: boolean;
      finish_reason: string;
      usage: { prompt_tokens: number; completion_tokens: number };
    };
    assert.equal(done.done, true);
    assert.ok(done.usage.completion_tokens >= 1 && done.usage.completion_tokens <= 16);
    assert.ok(done.usage.prompt_tokens >= 1);
    const deltas = chunks.slice(0, -1).map((chunk) => chunk.delta);
    assert.ok(deltas.every((delta) => typeof delta === "string"));
    assert.equal(`${deltas.join("")}\n`, text.stdout);
  });

  it("--choices prints choice 0 as it streams, then each other choice; --logprobs shows in --json", async () => {
    const sampled = ["Once upon a time", "--max-tokens", "12", "--temperature", "1", "--seed", "5"];
    const run = await runClient(withUrl(...sampled, "--choices", "3"), { env: keyEnv });
    assert.equal(run.code, 0, run.stderr);
    const [first = "", ...others] = run.stdout.split(/^\[choice \d\]\n/m);
    assert.ok(first.length > 1, "choice 0 first");
    assert.equal(others.length, 2);
    assert.ok(run.stdout.indexOf("[choice 1]\n") < run.stdout.indexOf("[choice 2]\n"), "in order");
    const json = await runClient(
      withUrl(...sampled, "--choices", "2", "--logprobs", "2", "--json"),
      {
        env: keyEnv,
      },
    );
    assert.equal(json.code, 0, json.stderr);
    const chunks = json.stdout
      .trimEnd()
      .split("\n")
      .map((line) => JSON.parse(line) as Record<string, unknown>);
    assert.ok(
      chunks.some((chunk) => chunk.index === 1),
      "choice 1's chunks name it",
    );
    const deltas = chunks.filter((chunk) => "delta" in chunk) as { logprobs?: unknown[] }[];
    assert.ok(
      deltas.every((chunk) => Array.isArray(chunk.logprobs)),
      "each delta has logprobs",
    );
    assert.equal((chunks.at(-1) as { choices?: unknown[] }).choices?.length, 2);
  });

  it("--no-stream (/runsync) prints the same text when the job ends", async () => {
    const streamed = await runClient(withUrl("Once upon a time", ...greedy16), { env: keyEnv });
    const sync = await runClient(withUrl("Once upon a time", ...greedy16, "--no-stream"), {
      env: keyEnv,
    });
    assert.equal(sync.code, 0, sync.stderr);
    assert.equal(sync.stdout, streamed.stdout);
    assert.match(sync.stderr, /status=COMPLETED/);
  });

  it("sends chat messages from --system/--chat and from --messages-file alike", async () => {
    const flags = await runClient(
      withUrl("--system", "You tell stories.", "--chat", "A story, please.", ...greedy16),
      { env: keyEnv },
    );
    assert.equal(flags.code, 0, flags.stderr);
    assert.ok(flags.stdout.trim().length > 0);

    const file = path.join(tempDir, "messages.json");
    await writeFile(
      file,
      JSON.stringify([
        { role: "system", content: "You tell stories." },
        { role: "user", content: "A story, please." },
      ]),
    );
    const fromFile = await runClient(withUrl("--messages-file", file, ...greedy16), {
      env: keyEnv,
    });
    assert.equal(fromFile.code, 0, fromFile.stderr);
    assert.equal(fromFile.stdout, flags.stdout);
  });

  it("reads the prompt from --prompt-file, or from standard input with - or --prompt-file -", async () => {
    const prompt = "Once upon a time";
    const asArgument = await runClient(withUrl(prompt, ...greedy16), { env: keyEnv });
    assert.equal(asArgument.code, 0, asArgument.stderr);
    const file = path.join(tempDir, "prompt.txt");
    await writeFile(file, prompt);
    const runs = [
      await runClient(withUrl("--prompt-file", file, ...greedy16), { env: keyEnv }),
      await runClient(withUrl("-", ...greedy16), { env: keyEnv, stdin: prompt }),
      await runClient(withUrl("--prompt-file", "-", ...greedy16), { env: keyEnv, stdin: prompt }),
    ];
    const promptTokens = (run: ClientRun) => Number(/prompt_tokens=(\d+)/.exec(run.stderr)?.[1]);
    for (const run of runs) {
      assert.equal(run.code, 0, run.stderr);
      assert.equal(run.stdout, asArgument.stdout, "the same prompt, the same greedy text");
      assert.equal(promptTokens(run), promptTokens(asArgument));
    }
    // The text is sent as it is: a last newline is part of the prompt.
    const withNewline = await runClient(withUrl("-", ...greedy16), {
      env: keyEnv,
      stdin: `${prompt}\n`,
    });
    assert.equal(withNewline.code, 0, withNewline.stderr);
    assert.ok(promptTokens(withNewline) > promptTokens(asArgument), withNewline.stderr);
  });

  it("exits 2 for a prompt file it cannot read, or a prompt given twice, never showing the text", async () => {
    const unused = `http://127.0.0.1:${await freePort()}`;
    const secret = "zebra-quartz-prompt";
    const secretFile = path.join(tempDir, "secret-prompt.txt");
    await writeFile(secretFile, secret);
    const emptyFile = path.join(tempDir, "empty-prompt.txt");
    await writeFile(emptyFile, "\n");
    const binaryFile = path.join(tempDir, "binary-prompt.bin");
    await writeFile(binaryFile, Buffer.from([0x41, 0xff, 0xfe, 0x42]));
    const missing = path.join(tempDir, "no-such-prompt.txt");
    const cases: [string[], RegExp, string?][] = [
      [["--prompt-file", missing], new RegExp(`cannot read --prompt-file ${missing} \\(ENOENT\\)`)],
      [["--prompt-file", tempDir], /cannot read --prompt-file .* \(EISDIR\)/],
      [["--prompt-file", emptyFile], /the prompt in --prompt-file .* is empty/],
      [["--prompt-file", binaryFile], /is not UTF-8 text/],
      [["-"], /the prompt in standard input is empty/, ""],
      [[secret, "--prompt-file", secretFile], /give the prompt once/],
      [["--chat", secret, "--prompt-file", secretFile], /give the user message once/],
    ];
    for (const [args, message, stdin] of cases) {
      const run = await runClient([...args, "--url", unused], {
        env: keyEnv,
        ...(stdin === undefined ? {} : { stdin }),
      });
      assert.equal(run.code, 2, `${args.join(" ")}: ${run.stderr}`);
      assert.match(run.stderr, message);
      assert.doesNotMatch(run.stderr, new RegExp(secret));
      assert.equal(run.stdout, "");
    }
  });

  it("exits 1 with DECRYPT_FAILED when the key is not the pool's", async () => {
    const run = await runClient(withUrl("Once upon a time", ...greedy16), {
      env: { ENCRYPTION_KEY: FernetKey.generate().exportKey(), DATA_DIR: tempDir },
    });
    assert.equal(run.code, 1, run.stderr);
    assert.match(run.stderr, /^error: DECRYPT_FAILED: .+$/m);
    assert.match(run.stderr, /status=FAILED job=\S+/);
    assert.equal(run.stdout, "");
  });

  it("exits 1 with UNKNOWN_MODEL for a model the pool does not serve", async () => {
    const run = await runClient(withUrl("Once upon a time", "--model", "nope"), { env: keyEnv });
    assert.equal(run.code, 1, run.stderr);
    assert.match(run.stderr, /^error: UNKNOWN_MODEL: .*tiny/m);
  });

  it("takes the key from --key-file, else from the local key file in DATA_DIR", async () => {
    const keyFile = path.join(tempDir, "pool.key");
    await writeFile(keyFile, `${stack.key}\n`, { mode: 0o600 });
    const viaFlag = await runClient(withUrl("Once upon a time", ...greedy16, "-k", keyFile), {
      env: { DATA_DIR: tempDir },
    });
    assert.equal(viaFlag.code, 0, viaFlag.stderr);

    const dataDir = await mkdtemp(path.join(tempDir, "data-"));
    await writeFile(path.join(dataDir, "encryption.key"), `${stack.key}\n`, { mode: 0o600 });
    const viaDataDir = await runClient(withUrl("Once upon a time", ...greedy16), {
      env: { DATA_DIR: dataDir },
    });
    assert.equal(viaDataDir.code, 0, viaDataDir.stderr);
    assert.equal(viaDataDir.stdout, viaFlag.stdout);
  });

  it("exits 2, saying where it looked, when there is no key", async () => {
    const missing = path.join(tempDir, "no-such.key");
    const badFile = await runClient(withUrl("Once upon a time", "--key-file", missing), {
      env: { DATA_DIR: tempDir },
    });
    assert.equal(badFile.code, 2, badFile.stderr);
    assert.ok(badFile.stderr.includes(missing), badFile.stderr);

    const none = await runClient(withUrl("Once upon a time"), { env: { DATA_DIR: tempDir } });
    assert.equal(none.code, 2, none.stderr);
    assert.match(none.stderr, /ENCRYPTION_KEY/);
    assert.ok(none.stderr.includes(path.join(tempDir, "encryption.key")), none.stderr);
  });

  it("exits 2 on a bad command line, before contacting anyone", async () => {
    const unused = `http://127.0.0.1:${await freePort()}`;
    const cases: [string[], RegExp][] = [
      [["x", "--temperature", "3"], /--temperature must be a number in \[0, 2\], got "3"/],
      [["x", "--max-tokens", "1.5"], /--max-tokens must be a whole number/],
      [["x", "--top-p", "0"], /--top-p must be a number in \(0, 1\]/],
      [["x", "--no-such-flag"], /--no-such-flag/],
      [[], /nothing to send/],
      [["x", "--chat", "y"], /not both/],
    ];
    for (const [args, message] of cases) {
      const run = await runClient([...args, "--url", unused], { env: keyEnv });
      assert.equal(run.code, 2, `${args.join(" ")}: ${run.stderr}`);
      assert.match(run.stderr, message);
    }
    const help = await runClient(["--help"]);
    assert.equal(help.code, 0);
    assert.match(help.stdout, /^Usage: npm run client -- /);
  });

  it("exits 3, naming the URL, when the server is down", async () => {
    const unused = `http://127.0.0.1:${await freePort()}`;
    const run = await runClient(["Once upon a time", "--url", unused], { env: keyEnv });
    assert.equal(run.code, 3, run.stderr);
    assert.ok(run.stderr.includes(`${unused}/run`), run.stderr);
    assert.match(run.stderr, /ECONNREFUSED/);
  });

  it("cancels the job on Ctrl-C and exits 130", async () => {
    const run = await runClient(
      withUrl("Once upon a time", "--max-tokens", "2000", "--temperature", "0", "--json"),
      { env: keyEnv, onOutput: (child) => child.kill("SIGINT") },
    );
    assert.equal(run.code, 130, run.stderr);
    const match = /^interrupted: job=(\S+) status=CANCELLED$/m.exec(run.stderr);
    assert.ok(match, run.stderr);
    const status = (await (await fetch(`${stack.url}/status/${match[1]}`)).json()) as {
      status: string;
    };
    assert.equal(status.status, "CANCELLED");
    const done = run.stdout
      .trimEnd()
      .split("\n")
      .map((line) => JSON.parse(line) as { done?: boolean; usage?: { completion_tokens: number } })
      .find((chunk) => chunk.done);
    assert.ok(done === undefined || (done.usage?.completion_tokens ?? 0) < 2000);
  });

  it("speaks to a RunPod-style endpoint: /v2/<endpoint> routes, Bearer key, no long poll", async () => {
    const apiKey = "e2e-api-key";
    const proxy = await startHostedLikeProxy(stack.url, apiKey);
    try {
      const direct = await runClient(withUrl("Once upon a time", ...greedy16), { env: keyEnv });
      const hosted = await runClient(["Once upon a time", ...greedy16], {
        env: { ...keyEnv, POOL_URL: proxy.url, RUNPOD_API_KEY: apiKey },
      });
      assert.equal(hosted.code, 0, hosted.stderr);
      assert.equal(hosted.stdout, direct.stdout);
      assert.ok(proxy.seen.streamPolls >= 1);

      const refused = await runClient(["Once upon a time", "--url", proxy.url], { env: keyEnv });
      assert.equal(refused.code, 3, refused.stderr);
      assert.ok(refused.stderr.includes(`${proxy.url}/run: HTTP 401`), refused.stderr);
    } finally {
      await proxy.close();
    }
  });

  it("--encrypt-output: the endpoint relays only ciphertext, the client prints the same text", async () => {
    const apiKey = "e2e-api-key";
    const proxy = await startHostedLikeProxy(stack.url, apiKey);
    try {
      const plain = await runClient(withUrl("Once upon a time", ...greedy16), { env: keyEnv });
      const env = { ...keyEnv, POOL_URL: proxy.url, RUNPOD_API_KEY: apiKey };
      for (const mode of [[], ["--no-stream"]]) {
        proxy.seen.answers.length = 0;
        const run = await runClient(
          ["Once upon a time", ...greedy16, "--encrypt-output", ...mode],
          {
            env,
          },
        );
        assert.equal(run.code, 0, run.stderr);
        assert.equal(run.stdout, plain.stdout);
        const relayed = proxy.seen.answers.join("\n");
        assert.match(relayed, /"encrypted":"gAAAAA/);
        assert.doesNotMatch(relayed, /"delta"|"done"|finish_reason/);
        assert.ok(!relayed.includes(plain.stdout.trim().slice(0, 20)), "text crossed the proxy");
      }
    } finally {
      await proxy.close();
    }
  });
});

describe("reference client against a full queue", { timeout: 300_000 }, () => {
  let stack: TestStack;
  let tempDir: string;
  let keyEnv: Record<string, string>;
  /** The long job on the only sequence, and the job that fills the queue (limit 1). */
  let holder: string;
  let waiting: string;
  const marker = "prompt-text-that-must-not-show";
  const busyLine = /^pool busy: QUEUE_FULL \(HTTP 429\); retrying in (\d+) s \((\d+) of (\d+)\)$/gm;

  const run = async (request: object) =>
    (await stack.post("/run", { input: { encrypted_input: stack.encrypt(request) } })) as {
      id: string;
      status: string;
    };

  before(async () => {
    tempDir = await mkdtemp(path.join(os.tmpdir(), "client-busy-"));
    stack = await TestStack.start({
      models: `tiny=${await tinyModelPath()}`,
      env: {
        MAX_QUEUED_JOBS: "1",
        MODEL_SEQUENCES: "1",
        CONTEXT_SIZE: "16384",
        MAX_TOKENS_LIMIT: "16000",
      },
      label: "client-busy",
    });
    keyEnv = { ENCRYPTION_KEY: stack.key, DATA_DIR: tempDir };
    // ~1,000 tokens/s here: the holder keeps the only sequence for the whole describe.
    const held = await run({
      prompt: "the dog",
      sampling_params: { max_tokens: 16_000, temperature: 0 },
    });
    assert.equal(held.status, "IN_QUEUE", JSON.stringify(held));
    holder = held.id;
    await waitFor(
      async () =>
        ((await stack.get(`/status/${holder}`)) as { status: string }).status === "IN_PROGRESS",
      30_000,
      "the long job running",
    );
    const queued = await run({ prompt: "x", sampling_params: { max_tokens: 1 } });
    assert.equal(queued.status, "IN_QUEUE");
    waiting = queued.id;
  });

  after(async () => {
    await stack?.stop();
    if (tempDir !== undefined) await rm(tempDir, { recursive: true, force: true });
  });

  it("retries a 429 after its Retry-After, at most --retries times, then exits 1 QUEUE_FULL", async () => {
    const started = performance.now();
    const run = await runClient([marker, "--retries", "2", "--url", stack.url], { env: keyEnv });
    const elapsedMs = performance.now() - started;
    assert.equal(run.code, 1, run.stderr);
    const waits = [...run.stderr.matchAll(busyLine)];
    assert.deepEqual(
      waits.map((wait) => [wait[2], wait[3]]),
      [
        ["1", "2"],
        ["2", "2"],
      ],
      run.stderr,
    );
    const waitedMs = waits.reduce((sum, wait) => sum + Number(wait[1]) * 1000, 0);
    assert.ok(waitedMs >= 2000, run.stderr);
    assert.ok(
      elapsedMs >= waitedMs,
      `done in ${Math.round(elapsedMs)} ms, told to wait ${waitedMs}`,
    );
    assert.match(run.stderr, /^error: QUEUE_FULL: /m);
    assert.ok(!run.stderr.includes(marker) && !run.stdout.includes(marker));
  });

  it("--retries 0 gives up at once", async () => {
    const run = await runClient(["x", "--retries", "0", "--url", stack.url], { env: keyEnv });
    assert.equal(run.code, 1, run.stderr);
    assert.doesNotMatch(run.stderr, /pool busy/);
    assert.match(run.stderr, /^error: QUEUE_FULL: /m);
  });

  it("gets the job in once the queue has room, and prints its text", async () => {
    let freed = false;
    const run = await runClient(
      [marker, "--max-tokens", "8", "--temperature", "0", "--retries", "10", "--url", stack.url],
      {
        env: keyEnv,
        onStderr: (stderr) => {
          if (freed || !/pool busy/.test(stderr)) return;
          freed = true;
          // Room in the queue, and the sequence free for the job.
          void stack.post(`/cancel/${waiting}`, {}).then(() => stack.post(`/cancel/${holder}`, {}));
        },
      },
    );
    assert.equal(run.code, 0, run.stderr);
    assert.ok(freed, "the client was refused first");
    assert.ok([...run.stderr.matchAll(busyLine)].length >= 1, run.stderr);
    assert.ok(run.stdout.trim().length > 0);
    assert.match(run.stderr, /^status=COMPLETED /m);
  });
});
