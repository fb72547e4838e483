/**
 * The security promise end to end, on the real stack: encrypted outputs (and Python opening
 * them), the replay window, the size cap, PROMPT_TOO_LONG before any output, bad key material at
 * startup, and a leak hunt: a unique marker in prompts, and the generated text, must appear in no
 * log line (LOG_LEVEL=debug), no Redis command any process sent (MONITOR), no pub/sub message and
 * no Redis key or value, during a job or after.
 */
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { Redis } from "ioredis";
import { FernetKey } from "../../shared/crypto/index.js";
import {
  type EncryptedChunk,
  isEncryptedChunk,
  isFinalChunk,
  jobMetadataSchema,
  type OutputChunk,
  type StreamChunk,
} from "../../shared/protocol/index.js";
import { type TestClient, testClient, writeKeysFile } from "../support/client-keys.js";
import { tinyModelPath } from "../support/models.js";
import { keysWithPrefix, queueKey } from "../support/redis.js";
import { type JobView, TestStack, textOf } from "../support/stack.js";
import { waitFor } from "../support/wait-for.js";

const distRoot = fileURLToPath(new URL("../../", import.meta.url));
const marker = `LEAKMARK${randomBytes(6).toString("hex")}`;
const greedy = { temperature: 0, max_tokens: 24 };

function errorCode(view: { error?: string }): string {
  assert.ok(view.error, "an error is present");
  return (JSON.parse(view.error) as { code: string }).code;
}

/** Every key under the prefix with its whole value, as text. */
async function dumpRedis(redis: Redis, prefix: string, url: string): Promise<string> {
  const out: string[] = [];
  for (const key of await keysWithPrefix(url, prefix)) {
    out.push(key);
    const type = await redis.type(key);
    const value =
      type === "string"
        ? await redis.get(key)
        : type === "hash"
          ? await redis.hgetall(key)
          : type === "list"
            ? await redis.lrange(key, 0, -1)
            : type === "set"
              ? await redis.smembers(key)
              : type === "zset"
                ? await redis.zrange(key, "0", "-1")
                : type === "stream"
                  ? await redis.xrange(key, "-", "+")
                  : null;
    out.push(JSON.stringify(value));
  }
  return out.join("\n");
}

function probePython(): string | false {
  const probe = spawnSync("python3", ["-c", "import cryptography.fernet"], { encoding: "utf8" });
  if (probe.error) return `python3 is not runnable (${probe.error.message}): interop skipped`;
  if (probe.status !== 0) return "python3 has no 'cryptography' module: interop skipped";
  return false;
}

describe("security end to end", () => {
  let stack: TestStack;
  let monitored: Redis;
  let monitor: Redis;
  let sniffer: Redis;
  let redis: Redis;
  const commands: string[] = [];
  const messages: string[] = [];
  const dumps: string[] = [];
  /** Text the model generated for prompts holding the marker: it must not leak either. */
  const outputs: string[] = [];
  /** A named client (`CLIENT_KEYS_FILE`): its key and its token must not leak either. */
  const client: TestClient = testClient("leak-hunter");
  let keys: Awaited<ReturnType<typeof writeKeysFile>>;

  before(async () => {
    const modelPath = await tinyModelPath({ chatTemplate: "chatml" });
    keys = await writeKeysFile([client]);
    stack = await TestStack.start({
      models: `tiny=${modelPath}`,
      env: {
        LOG_LEVEL: "debug",
        MODEL_SEQUENCES: "2",
        CONTEXT_SIZE: "256",
        // Every job cold: a greedy text evaluated on a cached prefix may differ in its last digits
        // from the same prompt evaluated whole (batch shapes), and these tests compare texts.
        PROMPT_CACHE: "off",
        DELTA_WINDOW_MS: "5",
        FERNET_TTL_SECONDS: "120",
        MAX_REQUEST_BYTES: "65536",
        CLIENT_KEYS_FILE: keys.file,
      },
      label: "security",
    });
    redis = new Redis(stack.redisUrl);
    // Everything any process sends to Redis from now on, and every message on the prefix.
    monitored = new Redis(stack.redisUrl);
    monitor = await monitored.monitor();
    monitor.on("monitor", (_time: string, args: string[]) => commands.push(args.join(" ")));
    sniffer = new Redis(stack.redisUrl);
    sniffer.on("pmessage", (_pattern: string, channel: string, message: string) =>
      messages.push(`${channel} ${message}`),
    );
    await sniffer.psubscribe(`${stack.prefix}:*`);
  });

  after(async () => {
    monitor?.disconnect();
    monitored?.disconnect();
    sniffer?.disconnect();
    redis?.disconnect();
    await stack?.stop();
    await keys?.remove();
  });

  describe("encrypted output", () => {
    const prompt = "Once upon a time the cat";
    let plain: StreamChunk[];
    let raw: OutputChunk[];
    let opened: StreamChunk[];

    before(async () => {
      const view = await stack.runsync({ prompt, sampling_params: greedy });
      assert.equal(view.status, "COMPLETED");
      plain = view.output ?? [];
      const job = await stack.run({ prompt, sampling_params: greedy, encrypt_output: true });
      ({ raw, chunks: opened } = await stack.streamAll(job.id));
    });

    it("sends every chunk, the final one too, as {seq, encrypted} only", () => {
      assert.ok(raw.length >= 2);
      for (const [index, chunk] of raw.entries()) {
        assert.deepEqual(Object.keys(chunk).sort(), ["encrypted", "seq"]);
        assert.equal(chunk.seq, index);
        assert.ok(isEncryptedChunk(chunk));
      }
      const last = opened.at(-1);
      assert.ok(last !== undefined && isFinalChunk(last));
      assert.equal(last.finish_reason, "length");
    });

    it("opens to the text the plaintext path gives", () => {
      assert.ok(textOf(plain).length > 0);
      assert.equal(textOf(opened), textOf(plain));
      for (const chunk of raw) {
        assert.ok(!JSON.stringify(chunk).includes(textOf(plain).trim().slice(0, 12)));
      }
    });

    it("encrypts /status and /runsync outputs too", async () => {
      const view = await stack.runsync({ prompt, sampling_params: greedy, encrypt_output: true });
      assert.equal(view.status, "COMPLETED");
      const output = (view.output ?? []) as unknown as OutputChunk[];
      assert.ok(output.length >= 2 && output.every(isEncryptedChunk));
      assert.equal(textOf(output.map((chunk) => stack.open(chunk))), textOf(plain));
      const status = (await stack.get(`/status/${view.id}`)) as { output: OutputChunk[] };
      assert.deepEqual(status.output, output);
    });

    it("decrypts in Python, chunk by chunk, to the same chunks and text", {
      skip: probePython(),
    }, () => {
      const script = [
        "import json, sys",
        "from cryptography.fernet import Fernet",
        "data = json.load(sys.stdin)",
        "f = Fernet(data['key'])",
        "json.dump([f.decrypt(t).decode('utf-8') for t in data['tokens']], sys.stdout)",
      ].join("\n");
      const tokens = (raw as EncryptedChunk[]).map((chunk) => chunk.encrypted);
      const run = spawnSync("python3", ["-c", script], {
        input: JSON.stringify({ key: stack.key, tokens }),
        encoding: "utf8",
      });
      assert.equal(run.status, 0, `python3 failed: ${run.stderr}`);
      const texts = JSON.parse(run.stdout) as string[];
      const chunks = texts.map((text) => JSON.parse(text) as StreamChunk);
      assert.deepEqual(chunks, opened);
      assert.equal(textOf(chunks), textOf(plain));
    });
  });

  describe("refusals", () => {
    it("refuses a token older than FERNET_TTL_SECONDS, or from the future: TOKEN_EXPIRED", async () => {
      const request = JSON.stringify({ prompt: marker });
      for (const offset of [-3600, 3600]) {
        const now = Math.floor(Date.now() / 1000) + offset;
        const token = stack.keyRing.encrypt(request, { now });
        const view = (await stack.post("/runsync", {
          input: { encrypted_input: token },
        })) as JobView;
        assert.equal(view.status, "FAILED");
        assert.equal(errorCode(view), "TOKEN_EXPIRED");
      }
    });

    it("answers 413 to a body over MAX_REQUEST_BYTES, and stays up", async () => {
      const response = await fetch(`${stack.url}/run`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ input: { encrypted_input: marker.repeat(5000) } }),
      });
      assert.equal(response.status, 413);
      const body = (await response.json()) as { error: string };
      assert.match(body.error, /MAX_REQUEST_BYTES/);
      assert.ok(!body.error.includes(marker));
      assert.deepEqual(stack.exitCodes, [null, null]);
    });

    it("fails PROMPT_TOO_LONG before streaming anything", async () => {
      const job = await stack.run({
        prompt: `${marker} the dog ran `.repeat(150),
        sampling_params: { max_tokens: 4 },
      });
      const { status, raw, error } = await stack.streamAll(job.id);
      assert.equal(status, "FAILED");
      assert.equal(errorCode({ error }), "PROMPT_TOO_LONG");
      assert.deepEqual(raw, [], "no chunk was streamed");
      const view = (await stack.get(`/status/${job.id}`)) as JobView;
      assert.equal(view.output, undefined);
    });
  });

  describe("bad key material at startup", () => {
    for (const part of ["orchestrator", "gpu-worker"]) {
      it(`${part}: exits 2 naming the entry, never echoing a key`, async () => {
        const good = FernetKey.generate().exportKey();
        const bad = `${good.slice(0, 20)}!${good.slice(21)}`;
        const child = spawn(process.execPath, [path.join(distRoot, part, "main.js")], {
          env: { PATH: process.env.PATH ?? "", ENCRYPTION_KEY: `${good},${bad}` },
          stdio: ["ignore", "pipe", "pipe"],
        });
        let output = "";
        for (const stream of [child.stdout, child.stderr]) {
          stream.setEncoding("utf8");
          stream.on("data", (text: string) => {
            output += text;
          });
        }
        const code = await new Promise<number | null>((resolve) => child.on("exit", resolve));
        assert.equal(code, 2, output);
        assert.match(output, /ENCRYPTION_KEY entry 2 of 2 is not a Fernet key/);
        for (const secret of [good, bad, good.slice(0, 20), good.slice(21, 43)]) {
          assert.ok(!output.includes(secret), "key material echoed");
        }
      });
    }
  });

  describe("nothing leaks", () => {
    it("holds no marker and no output in Redis while a job runs", async () => {
      const job = await stack.run({
        messages: [{ role: "user", content: `Tell me about ${marker}` }],
        sampling_params: { max_tokens: 200, temperature: 0 },
      });
      // Dump as soon as replies flow: the job, its sealed data and its delta stream are present.
      let firstChunk: () => void = () => {};
      const flowing = new Promise<void>((resolve) => {
        firstChunk = resolve;
      });
      const done = stack.streamAll(job.id, () => firstChunk());
      await Promise.race([flowing, done]);
      dumps.push(await dumpRedis(redis, stack.prefix, stack.redisUrl));
      const { status, chunks } = await done;
      assert.equal(status, "COMPLETED");
      outputs.push(textOf(chunks));
      assert.ok(dumps[0]?.includes(":deltas:") || dumps[0]?.includes(":{model-tiny}:"));
    });

    it("runs marked requests through every path", async () => {
      const plain = await stack.runsync({
        prompt: `The ${marker} was`,
        sampling_params: greedy,
      });
      assert.equal(plain.status, "COMPLETED");
      outputs.push(textOf(plain.output ?? []));
      const encrypted = await stack.runsync({
        messages: [
          { role: "system", content: marker },
          { role: "user", content: `Say ${marker}` },
          { role: "assistant", content: `${marker} is` },
        ],
        sampling_params: { ...greedy, stop: [marker] },
        encrypt_output: true,
      });
      assert.equal(encrypted.status, "COMPLETED");
      const output = (encrypted.output ?? []) as unknown as OutputChunk[];
      outputs.push(textOf(output.map((chunk) => stack.open(chunk))));
      // Refused ones: a bad field holding the marker, an unknown model named by it.
      const bad = await stack.runsync({ prompt: marker, sampling_params: { temperature: marker } });
      assert.equal(errorCode(bad), "INVALID_REQUEST");
      const unknown = await stack.runsync({ model: marker, prompt: marker });
      assert.equal(errorCode(unknown), "UNKNOWN_MODEL");
      for (const view of [bad, unknown]) assert.ok(!JSON.stringify(view).includes(marker));
      // A named client's, its output sealed to it, read with its token.
      const pool = client.poolClient(stack.url);
      const named = await pool.submit(
        client.input({ prompt: `Say ${marker}`, sampling_params: greedy, encrypt_output: true }),
      );
      const namedChunks = [];
      for await (const chunk of pool.chunks(named.id)) namedChunks.push(chunk);
      outputs.push(textOf(namedChunks));
      // A cancelled one.
      const cancelled = await stack.run({ prompt: marker, sampling_params: { max_tokens: 200 } });
      await stack.post(`/cancel/${cancelled.id}`, {});
      await stack.streamAll(cancelled.id);
    });

    it("finds the marker, the outputs and the key nowhere", async () => {
      // Let the processes finish their last writes before looking: BullMQ's end of each job (its
      // event) and the deletion of the jobs' delta streams and cancel marks.
      const { names } = stack;
      await waitFor(
        async () =>
          (await redis.llen(queueKey(names, "tiny", "active"))) === 0 &&
          !(await keysWithPrefix(stack.redisUrl, stack.prefix)).some(
            (key) => key.startsWith(names.deltaStream("")) || key.startsWith(names.cancelKey("")),
          ),
        10_000,
        "the jobs' last writes",
        100,
      );
      dumps.push(await dumpRedis(redis, stack.prefix, stack.redisUrl));
      const secrets = [
        marker,
        stack.key,
        stack.key.slice(0, 22),
        Buffer.from(stack.key, "base64url").toString("hex"),
        ...outputs.filter((text) => text.trim().length >= 16),
        client.key,
        client.key.slice(0, 22),
        Buffer.from(client.key, "base64url").toString("hex"),
        client.headers["x-client-token"] as string,
      ];
      assert.ok(outputs.filter((text) => text.trim().length >= 16).length >= 3, "outputs to hunt");
      assert.ok(
        stack.logs.some((line) => line.includes("client=leak-hunter")),
        "the named client's job ran",
      );
      assert.ok(commands.length > 50, "MONITOR saw the traffic");
      assert.ok(
        stack.logs.some((line) => line.includes("job ended")),
        "the logs were captured",
      );
      const places: [string, readonly string[]][] = [
        ["a log line", stack.logs],
        ["a Redis command", commands],
        ["a pub/sub message", messages],
        ["a Redis dump", dumps],
      ];
      for (const [where, texts] of places) {
        for (const text of texts) {
          for (const secret of secrets) {
            assert.ok(
              !text.includes(secret),
              `${where} holds a secret (${secrets.indexOf(secret)})`,
            );
          }
        }
      }
    });

    it("keeps of ended jobs in Redis their metadata only (and BullMQ's events)", async () => {
      const keys = await keysWithPrefix(stack.redisUrl, stack.prefix);
      assert.deepEqual(
        keys.filter((key) => key.includes(":deltas:") || key.includes(":cancel:")),
        [],
        "delta streams and cancel marks are deleted",
      );
      // Each job's record is one Fernet token, with an expiry.
      const records = keys.filter((key) => key.includes(":job:"));
      assert.ok(records.length > 0, "jobs have records");
      const reader = new Redis(stack.redisUrl);
      try {
        for (const key of records) {
          assert.match((await reader.get(key)) ?? "", /^gAAAA[\w=-]+$/, `${key} is sealed`);
          assert.ok((await reader.pttl(key)) > 0, `${key} expires`);
        }
      } finally {
        reader.disconnect();
      }
      // Finished jobs stay for the dashboard (DASHBOARD_RETENTION), their data replaced.
      const jobKeys = keys.filter((key) => /:\{model-tiny\}:[0-9a-f-]{36}$/.test(key));
      assert.ok(jobKeys.length > 0, "finished jobs are kept");
      const redis = new Redis(stack.redisUrl);
      try {
        for (const key of jobKeys) {
          const job = await redis.hgetall(key);
          const metadata = jobMetadataSchema.parse(JSON.parse(job.data ?? ""));
          assert.notEqual(metadata.status, "active", key);
          for (const [field, value] of Object.entries(job)) {
            assert.doesNotMatch(value, /gAAAA/, `${key} ${field} holds no sealed data`);
          }
        }
      } finally {
        redis.disconnect();
      }
    });
  });
});
