/**
 * A key per client, on the real stack: two named clients (`CLIENT_KEYS_FILE`) and the anonymous
 * key. Each opens only its own outputs (Python's `cryptography` too); a client's name with
 * another's token fails `DECRYPT_FAILED` as a bad token does; a client cannot read, stream or
 * cancel another's job (404, as for no job) through the local API, the `/v2/` routes or the proxy;
 * revoking a client (SIGHUP, or the file's change) refuses its next request while its running job
 * finishes and the others go on; bad client names and envelopes are refused with a code, nothing
 * queued; and no client key or token shows in a log line or a Redis value.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { randomUUID } from "node:crypto";
import { appendFile, chmod } from "node:fs/promises";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { Redis } from "ioredis";
import OpenAI from "openai";
import { OpenAiProxy } from "../../client/index.js";
import { createSeededRandom } from "../../gpu-worker/models/gguf/seeded-random.js";
import { clientTokenOf, FernetKey, KeyRing } from "../../shared/crypto/index.js";
import { ErrorCode } from "../../shared/errors/index.js";
import {
  decryptChunk,
  type EncryptedChunk,
  isEncryptedChunk,
  isFinalChunk,
  type OutputChunk,
} from "../../shared/protocol/index.js";
import { testClient, writeKeysFile } from "../support/client-keys.js";
import { tinyModelPath } from "../support/models.js";
import { RecordingRelay } from "../support/recording-relay.js";
import { keysWithPrefix, queueKey } from "../support/redis.js";
import { runEntryToExit } from "../support/run-entry.js";
import { TestStack, textOf } from "../support/stack.js";
import { waitFor, waitForLine } from "../support/wait-for.js";

const distRoot = fileURLToPath(new URL("../../", import.meta.url));
const short = { prompt: "Once upon a time", sampling_params: { max_tokens: 8, temperature: 0 } };
const long = { prompt: "the dog", sampling_params: { max_tokens: 1500, temperature: 0 } };

interface View {
  id: string;
  status: string;
  output?: OutputChunk[];
  stream?: { output: OutputChunk }[];
  error?: string;
}

function errorOf(view: View): { code: string; message: string } {
  assert.ok(view.error, `an error is present: ${JSON.stringify(view)}`);
  return JSON.parse(view.error) as { code: string; message: string };
}

function probePython(): string | false {
  const probe = spawnSync("python3", ["-c", "import cryptography.fernet"], { encoding: "utf8" });
  if (probe.error) return `python3 is not runnable (${probe.error.message}): interop skipped`;
  if (probe.status !== 0) return "python3 has no 'cryptography' module: interop skipped";
  return false;
}

describe("a key per client", () => {
  const alpha = testClient("alpha");
  const beta = testClient("beta");
  let keys: Awaited<ReturnType<typeof writeKeysFile>>;
  let stack: TestStack;
  let redis: Redis;

  before(async () => {
    keys = await writeKeysFile([alpha, beta]);
    stack = await TestStack.start({
      models: `tiny=${await tinyModelPath({ chatTemplate: "chatml" })}`,
      env: {
        CLIENT_KEYS_FILE: keys.file,
        MODEL_SEQUENCES: "4",
        CONTEXT_SIZE: "2048",
        DELTA_WINDOW_MS: "5",
        LOG_LEVEL: "debug",
      },
      label: "clients",
    });
    redis = new Redis(stack.redisUrl);
  });

  after(async () => {
    redis?.disconnect();
    await stack?.stop();
    await keys?.remove();
  });

  async function call(
    method: "GET" | "POST",
    route: string,
    body?: unknown,
    headers: Record<string, string> = {},
  ): Promise<{ status: number; body: View & { error?: string } }> {
    const response = await fetch(`${stack.url}${route}`, {
      method,
      headers: {
        ...headers,
        ...(body === undefined ? {} : { "content-type": "application/json" }),
      },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    return { status: response.status, body: (await response.json()) as View };
  }

  const runsync = async (input: unknown) =>
    (await call("POST", "/runsync?wait=60000", { input })).body;

  /** Every chunk of a job, as served, polled with `headers`. */
  async function streamRaw(id: string, headers: Record<string, string>): Promise<OutputChunk[]> {
    const raw: OutputChunk[] = [];
    for (;;) {
      const { status, body } = await call("GET", `/stream/${id}?wait=10000`, undefined, headers);
      assert.equal(status, 200, JSON.stringify(body));
      for (const item of body.stream ?? []) raw.push(item.output);
      if (
        body.status !== "IN_QUEUE" &&
        body.status !== "IN_PROGRESS" &&
        !(body.stream?.length ?? 0)
      )
        return raw;
    }
  }

  const opens = (ring: KeyRing, chunk: OutputChunk) =>
    isEncryptedChunk(chunk) && decryptChunk(ring, chunk) !== undefined;

  /** A finished job of alpha's, with encrypted output. */
  let alphaJobId: string;

  describe("outputs to their owner", () => {
    let alphaRaw: OutputChunk[];
    let anonymousRaw: OutputChunk[];

    before(async () => {
      const job = await runsync(alpha.input({ ...short, encrypt_output: true }));
      assert.equal(job.status, "COMPLETED", JSON.stringify(job));
      alphaRaw = job.output ?? [];
      alphaJobId = job.id;
      const anonymous = await stack.runsync({ ...short, encrypt_output: true });
      assert.equal(anonymous.status, "COMPLETED");
      anonymousRaw = anonymous.output as unknown as OutputChunk[];
    });

    it("seals a client's chunks with its key: only it opens them", () => {
      assert.ok(alphaRaw.length >= 2 && alphaRaw.every(isEncryptedChunk));
      for (const chunk of alphaRaw) {
        assert.ok(opens(alpha.ring, chunk), "alpha opens its chunk");
        assert.ok(!opens(beta.ring, chunk), "beta does not");
        assert.ok(!opens(stack.keyRing, chunk), "the pool's key does not");
      }
      for (const chunk of anonymousRaw) {
        assert.ok(opens(stack.keyRing, chunk), "the anonymous client's output opens with its key");
        assert.ok(!opens(alpha.ring, chunk), "alpha does not open the anonymous output");
      }
      const opened = alphaRaw.map((chunk) => decryptChunk(alpha.ring, chunk as EncryptedChunk));
      assert.ok(textOf(opened.filter((chunk) => chunk !== undefined)).length > 0);
      const last = opened.at(-1);
      assert.ok(last !== undefined && isFinalChunk(last));
    });

    it("is opened by Python's cryptography with the client's key only", {
      skip: probePython(),
    }, () => {
      const script = [
        "import json, sys",
        "from cryptography.fernet import Fernet, InvalidToken",
        "data = json.load(sys.stdin)",
        "def attempt(key, token):",
        "    try:",
        "        return json.loads(Fernet(key).decrypt(token))['seq']",
        "    except InvalidToken:",
        "        return 'InvalidToken'",
        "json.dump({name: [attempt(key, t) for t in data['tokens']]",
        "           for name, key in data['keys'].items()}, sys.stdout)",
      ].join("\n");
      const tokens = (alphaRaw as EncryptedChunk[]).map((chunk) => chunk.encrypted);
      const run = spawnSync("python3", ["-c", script], {
        input: JSON.stringify({
          keys: { alpha: alpha.key, beta: beta.key, pool: stack.key },
          tokens,
        }),
        encoding: "utf8",
      });
      assert.equal(run.status, 0, `python3 failed: ${run.stderr}`);
      const result = JSON.parse(run.stdout) as Record<string, unknown[]>;
      assert.deepEqual(
        result.alpha,
        alphaRaw.map((chunk) => chunk.seq),
      );
      assert.ok(result.beta?.every((value) => value === "InvalidToken"));
      assert.ok(result.pool?.every((value) => value === "InvalidToken"));
    });
  });

  it("fails a client's name with another's token DECRYPT_FAILED, as a bad token", async () => {
    const bad = errorOf(await runsync({ encrypted_input: FernetKey.generate().encrypt("{}") }));
    assert.equal(bad.code, ErrorCode.DECRYPT_FAILED);
    for (const input of [
      { client: "alpha", encrypted_input: beta.ring.encrypt(JSON.stringify(short)) },
      { client: "beta", encrypted_input: alpha.ring.encrypt(JSON.stringify(short)) },
      { client: "alpha", encrypted_input: stack.encrypt(short) },
      { encrypted_input: alpha.ring.encrypt(JSON.stringify(short)) },
      { client: "gamma", encrypted_input: alpha.ring.encrypt(JSON.stringify(short)) },
    ]) {
      const view = await runsync(input);
      assert.equal(view.status, "FAILED");
      assert.deepEqual(errorOf(view), bad, `the same answer for ${JSON.stringify(input.client)}`);
    }
  });

  describe("jobs belong to their client", () => {
    let jobId: string;
    let notFound: unknown;

    before(async () => {
      const job = (await call("POST", "/run", { input: alpha.input(long) })).body;
      assert.equal(job.status, "IN_QUEUE", JSON.stringify(job));
      jobId = job.id;
      notFound = (await call("GET", `/status/${randomUUID()}`)).body;
    });

    const routes = (prefix: string, id: string) =>
      [
        ["GET", `${prefix}/status/${id}`],
        ["GET", `${prefix}/status-sync/${id}?wait=1`],
        ["GET", `${prefix}/stream/${id}?wait=1`],
        ["POST", `${prefix}/cancel/${id}`],
      ] as const;

    it("answers another client, or none, 404 as for no job, on the local and /v2/ routes", async () => {
      const strangers = [
        beta.headers,
        {},
        { "x-client-token": clientTokenOf(stack.keyRing.primary) },
        { "x-client-token": "not-a-token" },
      ];
      for (const prefix of ["", "/v2/any-endpoint"]) {
        for (const [method, route] of routes(prefix, jobId)) {
          for (const headers of strangers) {
            const answer = await call(method, route, method === "POST" ? {} : undefined, headers);
            assert.equal(answer.status, 404, `${method} ${route} ${JSON.stringify(headers)}`);
            assert.deepEqual(answer.body, notFound);
          }
        }
      }
      const status = await call("GET", `/status/${jobId}`, undefined, alpha.headers);
      assert.equal(status.status, 200);
      assert.notEqual(status.body.status, "CANCELLED", "no stranger's cancel took");
    });

    it("answers its client on every route, and cancels for it", async () => {
      for (const prefix of ["", "/v2/any-endpoint"]) {
        for (const [method, route] of routes(prefix, jobId).slice(0, 3)) {
          const answer = await call(method, route, undefined, alpha.headers);
          assert.equal(answer.status, 200, `${method} ${route}`);
          assert.equal(answer.body.id, jobId);
        }
      }
      const cancelled = await call("POST", `/v2/x/cancel/${jobId}`, {}, alpha.headers);
      assert.equal(cancelled.status, 200);
      assert.equal(cancelled.body.status, "CANCELLED");
    });

    it("keeps the anonymous client's jobs open to any caller, as before", async () => {
      const job = await stack.runsync(short);
      assert.equal(job.status, "COMPLETED");
      assert.equal((await call("GET", `/status/${job.id}`)).status, 200);
      assert.equal((await call("GET", `/status/${job.id}`, undefined, beta.headers)).status, 200);
    });

    it("holds through the proxy: its client's job answers it, and only it", async () => {
      const relay = await RecordingRelay.start(stack.url);
      const proxy = await OpenAiProxy.start(
        { client: alpha.poolClient(relay.url), keyRing: alpha.ring },
        "127.0.0.1",
        0,
      );
      try {
        const openai = new OpenAI({ baseURL: `${proxy.url}/v1`, apiKey: "unused", maxRetries: 0 });
        const completion = await openai.completions.create({
          model: "tiny",
          prompt: "Once upon a time",
          max_tokens: 8,
          temperature: 0,
        });
        assert.ok((completion.choices[0]?.text ?? "").length > 0);
        const run = relay.calls.find((relayed) => relayed.path === "/run");
        assert.ok(run, "the proxy submitted a job");
        assert.equal(
          (JSON.parse(run.requestBody) as { input: { client: string } }).input.client,
          "alpha",
        );
        const { id } = JSON.parse(run.responseBody) as { id: string };
        assert.ok(
          relay.calls.some(
            (relayed) => relayed.path.startsWith(`/stream/${id}`) && relayed.status === 200,
          ),
        );
        // Another client's proxy and pool client find no such job.
        const stranger = beta.poolClient(stack.url);
        await assert.rejects(stranger.status(id), /404/);
        await assert.rejects(stranger.cancel(id), /404/);
        assert.equal((await alpha.poolClient(stack.url).status(id)).status, "COMPLETED");
      } finally {
        await proxy.close();
        await relay.close();
      }
    });
  });

  it("counts jobs and tokens per client, and names the client in the job's log lines", async () => {
    const metrics = await (await fetch(`${stack.url}/metrics`)).text();
    const completed =
      /llmpool_client_requests_total\{client="alpha",status="completed"\} (\d+)/.exec(metrics);
    assert.ok(Number(completed?.[1]) >= 1, metrics);
    assert.match(
      metrics,
      /llmpool_client_requests_total\{client="anonymous",status="completed"\} [1-9]/,
    );
    assert.match(metrics, /llmpool_client_tokens_total\{client="alpha",kind="generation"\} [1-9]/);
    assert.ok(!metrics.includes('client="beta",status="completed"'), "beta ran nothing yet");
    assert.ok(stack.logs.some((line) => /job queued .*client=alpha/.test(line)));
    assert.ok(stack.logs.some((line) => /job ended .*client=alpha/.test(line)));
  });

  describe("revocation and reload", () => {
    it("revokes a client on SIGHUP: its running job finishes, its next request fails, others go on", async () => {
      const job = (
        await call("POST", "/run", { input: beta.input({ ...long, encrypt_output: true }) })
      ).body;
      assert.equal(job.status, "IN_QUEUE", JSON.stringify(job));
      await waitFor(
        async () =>
          (await call("GET", `/status/${job.id}`, undefined, beta.headers)).body.status ===
          "IN_PROGRESS",
        60_000,
        "beta's job running",
      );
      await keys.write([alpha]);
      stack.orchestrator?.kill("SIGHUP");
      await waitForLine(
        stack.logs,
        (line) => /client keys reloaded reason=SIGHUP .*removed=beta/.test(line),
        10_000,
        "the reload",
      );
      // Revoked while its job runs (the job is long: it is still running now).
      const during = await call("GET", `/status/${job.id}`, undefined, beta.headers);
      assert.equal(during.body.status, "IN_PROGRESS", "revoked while the job ran");
      const refused = await runsync(beta.input(short));
      assert.equal(errorOf(refused).code, ErrorCode.DECRYPT_FAILED);
      const served = await runsync(alpha.input(short));
      assert.equal(served.status, "COMPLETED", "alpha is untouched");
      // Its job, accepted before, runs to its end, sealed to it, and it may still read it.
      const raw = await streamRaw(job.id, beta.headers);
      const final = await call("GET", `/status/${job.id}`, undefined, beta.headers);
      assert.equal(final.body.status, "COMPLETED");
      assert.ok(raw.length > 1 && raw.every((chunk) => opens(beta.ring, chunk)));
      assert.ok(
        stack.logs.some(
          (line) => /job ended .*client=beta/.test(line) && line.includes("COMPLETED"),
        ),
      );
      assert.equal(stack.orchestrator?.exitCode, null, "no restart");
    });

    it("keeps the clients it has when the file no longer reads, logging why without a key", async () => {
      await chmod(keys.file, 0o644);
      try {
        stack.orchestrator?.kill("SIGHUP");
        const line = await waitForLine(
          stack.logs,
          (text) => text.includes("client keys not reloaded"),
          10_000,
          "the refused reload",
        );
        assert.match(line, /chmod 600/);
        assert.equal((await runsync(alpha.input(short))).status, "COMPLETED", "alpha still served");
      } finally {
        await chmod(keys.file, 0o600);
      }
    });

    it("reloads on the file's change: generate-key --client adds a client, --rotate a key", async () => {
      const generate = (...args: string[]) =>
        spawnSync(process.execPath, [path.join(distRoot, "scripts", "generate-key.js"), ...args], {
          encoding: "utf8",
          env: { PATH: process.env.PATH ?? "" },
        });
      const added = generate("--client", "gamma", "--keys-file", keys.file);
      assert.equal(added.status, 0, added.stderr);
      const gammaKey = added.stdout.trim();
      const gamma = testClient("gamma", [FernetKey.parse(gammaKey)]);
      await waitForLine(
        stack.logs,
        (line) => /client keys reloaded .*added=gamma/.test(line),
        10_000,
        "gamma added",
      );
      assert.equal((await runsync(gamma.input(short))).status, "COMPLETED");

      const again = generate("--client", "gamma", "--keys-file", keys.file);
      assert.equal(again.status, 2);
      assert.match(again.stderr, /already: --rotate/);

      const rotated = generate("--client", "gamma", "--keys-file", keys.file, "--rotate");
      assert.equal(rotated.status, 0, rotated.stderr);
      const newer = testClient("gamma", [
        FernetKey.parse(rotated.stdout.trim()),
        FernetKey.parse(gammaKey),
      ]);
      const reloadsBefore = stack.logs.filter((line) =>
        line.includes("client keys reloaded"),
      ).length;
      await waitFor(
        () =>
          stack.logs.filter((line) => line.includes("client keys reloaded")).length > reloadsBefore,
        10_000,
        "the rotation read",
      );
      // The older key still opens requests; outputs are sealed with the new one.
      const view = await runsync(gamma.input({ ...short, encrypt_output: true }));
      assert.equal(view.status, "COMPLETED");
      const output = view.output ?? [];
      const newest = new KeyRing([newer.ring.primary]);
      assert.ok(output.length > 1 && output.every((chunk) => opens(newest, chunk)));
      assert.ok(!output.some((chunk) => opens(gamma.ring, chunk)), "not with the older key");
    });
  });

  it("refuses 200 fuzzed client names and envelopes with a code, queueing nothing", async () => {
    const eventsKey = queueKey(stack.names, "tiny", "events");
    const lastEvent = (await redis.xrevrange(eventsKey, "+", "-", "COUNT", 1))[0]?.[0] ?? "0-0";
    const random = createSeededRandom(Number(process.env.FUZZ_SEED ?? 20261206)).next;
    const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)] as T;
    const token = () => alpha.ring.encrypt(JSON.stringify(short));
    const names: unknown[] = [
      "",
      " alpha",
      "alpha ",
      "ALPHA",
      "alpha\u0000",
      "alph",
      "alphaa",
      "beta",
      "gamma2",
      "-alpha",
      "a".repeat(65),
      "a".repeat(10_000),
      "__proto__",
      "constructor",
      "toString",
      "hasOwnProperty",
      "anonymous",
      "\ud800",
      "😀",
      "alpha\nbeta",
      "../alpha",
      "alpha,beta",
      "alpha=x",
      "#alpha",
    ];
    const badTypes: unknown[] = [null, 1, true, [], {}, ["alpha"], { name: "alpha" }];
    const cases: { input: unknown; codes: string[] }[] = [];
    for (let index = 0; index < 200; index += 1) {
      switch (index % 5) {
        case 0:
        case 1:
          cases.push({
            input: { client: pick(names), encrypted_input: token() },
            codes: ["DECRYPT_FAILED"],
          });
          break;
        case 2:
          cases.push({
            input: { client: pick(badTypes), encrypted_input: token() },
            codes: ["INVALID_INPUT"],
          });
          break;
        case 3:
          cases.push({
            input: pick<unknown>([
              { client: "alpha" },
              { client: "alpha", encrypted_input: token(), extra: 1 },
              { client: "alpha", encrypted_input: "" },
              { client: "alpha", encrypted_input: 5 },
              { client: "alpha", input: token() },
              { Client: "alpha", encrypted_input: token() },
            ]),
            codes: ["INVALID_INPUT"],
          });
          break;
        default:
          cases.push({
            input: {
              client: "alpha",
              encrypted_input: pick([
                `${token()}x`,
                token().slice(0, 40),
                beta.ring.encrypt(JSON.stringify(short)),
                stack.encrypt(short),
                "gAAAAA",
              ]),
            },
            codes: ["DECRYPT_FAILED"],
          });
      }
    }
    for (let start = 0; start < cases.length; start += 20) {
      const slice = cases.slice(start, start + 20);
      const answers = await Promise.all(
        slice.map(({ input }) => call("POST", pick(["/run", "/runsync?wait=1000"]), { input })),
      );
      for (const [offset, answer] of answers.entries()) {
        const fuzz = slice[offset] as (typeof cases)[number];
        const where = `case ${start + offset}: ${JSON.stringify(fuzz.input).slice(0, 120)}`;
        assert.equal(answer.status, 200, where);
        assert.equal(answer.body.status, "FAILED", where);
        assert.ok(
          fuzz.codes.includes(errorOf(answer.body).code),
          `${errorOf(answer.body).code} ${where}`,
        );
      }
    }
    const events = await redis.xrange(eventsKey, `(${lastEvent}`, "+");
    assert.deepEqual(
      events.filter(([, fields]) => fields.includes("added")),
      [],
      "no job was added to the queue",
    );
    assert.deepEqual(stack.exitCodes, [null, null], "both processes are still up");
  });

  it("shows no client key, client token or key text in any log line or Redis value", async () => {
    const secrets = [alpha, beta].flatMap((client) => [
      client.key,
      client.key.slice(0, 22),
      Buffer.from(client.key, "base64url").toString("hex"),
      client.headers["x-client-token"] as string,
    ]);
    secrets.push(stack.key, stack.key.slice(0, 22));
    const values: string[] = [];
    for (const key of await keysWithPrefix(stack.redisUrl, stack.prefix)) {
      const type = await redis.type(key);
      const value =
        type === "string"
          ? await redis.get(key)
          : type === "hash"
            ? await redis.hgetall(key)
            : type === "stream"
              ? await redis.xrange(key, "-", "+")
              : type === "list"
                ? await redis.lrange(key, 0, -1)
                : type === "zset"
                  ? await redis.zrange(key, "0", "-1")
                  : type === "set"
                    ? await redis.smembers(key)
                    : null;
      values.push(`${key} ${JSON.stringify(value)}`);
    }
    assert.ok(values.length > 5, "Redis holds the jobs");
    assert.ok(
      stack.logs.some((line) => line.includes("client=alpha")),
      "the logs were captured",
    );
    for (const [where, texts] of [
      ["a log line", stack.logs],
      ["a Redis value", values],
    ] as const) {
      for (const text of texts) {
        for (const secret of secrets) {
          assert.ok(!text.includes(secret), `${where} holds secret ${secrets.indexOf(secret)}`);
        }
      }
    }
  });

  it("stops the orchestrator at start with exit 2 on a bad keys file, naming the line, never a key", async () => {
    const bad = await writeKeysFile([alpha]);
    try {
      await appendFile(bad.file, `alpha=${beta.key}\n`);
      const { code, output } = await runEntryToExit(
        "orchestrator/main.js",
        {
          ENCRYPTION_KEY: stack.key,
          CLIENT_KEYS_FILE: bad.file,
          REDIS_URL: "redis://127.0.0.1:1",
        },
        30_000,
      );
      assert.equal(code, 2, output);
      assert.match(output, /line 3 repeats the client "alpha"/);
      for (const secret of [alpha.key, beta.key, stack.key]) assert.ok(!output.includes(secret));
    } finally {
      await bad.remove();
    }
  });

  it("keeps a job its client's after an orchestrator restart: read back from Redis, sealed to it", async () => {
    await stack.restartOrchestrator("SIGTERM");
    const theirs = await call("GET", `/status/${alphaJobId}`, undefined, alpha.headers);
    assert.equal(theirs.status, 200);
    assert.equal(theirs.body.status, "COMPLETED");
    const output = theirs.body.output ?? [];
    assert.ok(output.length > 1 && output.every((chunk) => opens(alpha.ring, chunk)));
    for (const headers of [
      {},
      beta.headers,
      { "x-client-token": clientTokenOf(stack.keyRing.primary) },
    ]) {
      const other = await call("GET", `/status/${alphaJobId}`, undefined, headers);
      assert.equal(other.status, 404, JSON.stringify(headers));
    }
  });
});
