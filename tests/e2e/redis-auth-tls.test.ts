/**
 * REDIS_URL with a password, and with TLS (`rediss://`): the whole stack runs a job through a
 * redis-server that requires a password, the orchestrator over TLS and the gpu-worker over plain
 * TCP with the password, and neither process logs the password. Without the certificate's CA an
 * orchestrator stops at start (exit 2) naming `NODE_EXTRA_CA_CERTS`.
 */
import assert from "node:assert/strict";
import net from "node:net";
import { after, before, describe, it } from "node:test";
import { Redis } from "ioredis";
import { tinyModelPath } from "../support/models.js";
import { type SecureRedis, startSecureRedis } from "../support/secure-redis.js";
import { TestStack, textOf } from "../support/stack.js";
import { orchestratorStart } from "../support/topology-scenarios.js";

describe("Redis with a password and TLS", () => {
  let redis: SecureRedis;
  let stack: TestStack;

  before(async () => {
    redis = await startSecureRedis();
    if (redis.noTlsReason !== undefined) {
      process.stdout.write(`# notice: rediss:// not tested: ${redis.noTlsReason}\n`);
    }
    stack = await TestStack.start({
      models: `tiny=${await tinyModelPath()}`,
      env: {
        REDIS_URL: redis.tlsUrl ?? redis.url,
        ...(redis.caFile === undefined ? {} : { NODE_EXTRA_CA_CERTS: redis.caFile }),
        LOG_LEVEL: "debug",
      },
      gpuWorkerEnv: { REDIS_URL: redis.url },
      label: "redis-auth",
    });
  });

  after(async () => {
    await stack?.stop();
    await redis?.close();
  });

  it("refuses clients without the password", async () => {
    const { port } = new URL(redis.url);
    const answer = await new Promise<string>((resolve, reject) => {
      const socket = net.connect(Number(port), "127.0.0.1", () => socket.write("GET x\r\n"));
      socket.setEncoding("utf8");
      socket.once("data", (text: string) => {
        socket.destroy();
        resolve(text);
      });
      socket.once("error", reject);
    });
    assert.match(answer, /^-NOAUTH/);
  });

  it("runs a job end to end through it", async () => {
    const view = await stack.runsync({
      prompt: "Once upon a time",
      sampling_params: { max_tokens: 8, temperature: 0 },
    });
    assert.equal(view.status, "COMPLETED");
    assert.ok(textOf(view.output ?? []).length > 0);
    // The job went through this server: its keys are here, under the stack's prefix.
    const direct = new Redis(redis.url);
    try {
      const keys = await direct.keys(`${stack.prefix}:*`);
      assert.ok(keys.length > 0);
    } finally {
      direct.disconnect();
    }
  });

  it("the orchestrator connects over TLS when given rediss://", async (t) => {
    if (redis.tlsUrl === undefined) return t.skip(`no TLS: ${redis.noTlsReason}`);
    const tlsPort = new URL(redis.tlsUrl).port;
    const direct = new Redis(redis.url);
    try {
      const clients = String(await direct.client("LIST")).split("\n");
      const orchestrator = clients.filter((line) => / name=orchestrator/.test(line));
      const gpuWorker = clients.filter((line) => / name=gpu-worker/.test(line));
      assert.ok(orchestrator.length > 0 && gpuWorker.length > 0, "both parts are connected");
      for (const line of orchestrator)
        assert.match(line, new RegExp(` laddr=127\\.0\\.0\\.1:${tlsPort} `));
      for (const line of gpuWorker)
        assert.doesNotMatch(line, new RegExp(` laddr=[^ ]*:${tlsPort} `));
    } finally {
      direct.disconnect();
    }
  });

  it("an orchestrator that does not trust the CA exits 2 at once, naming NODE_EXTRA_CA_CERTS", async (t) => {
    if (redis.tlsUrl === undefined) return t.skip(`no TLS: ${redis.noTlsReason}`);
    const ran = await orchestratorStart({ REDIS_URL: redis.tlsUrl }, await tinyModelPath(), 60_000);
    assert.equal(ran.code, 2, ran.output);
    assert.match(
      ran.output,
      /REDIS_URL=rediss:\/\/:\*\*\*@127\.0\.0\.1:\d+\/?: the server's TLS certificate is not accepted/,
    );
    assert.match(ran.output, /NODE_EXTRA_CA_CERTS/);
    assert.ok(!ran.output.includes(redis.password), "password shown");
  });

  it("logs no password", () => {
    assert.ok(stack.logs.length > 0);
    for (const line of stack.logs) assert.ok(!line.includes(redis.password), "password logged");
  });
});
