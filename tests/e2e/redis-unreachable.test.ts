/**
 * Start-up against a Redis that is not there: each process waits REDIS_CONNECT_TIMEOUT_MS for it,
 * then exits 1 with a message that names REDIS_URL (its password hidden), why and what to check,
 * instead of retrying for ever without listening. A Redis that comes up within the wait is used.
 */
import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { FernetKey } from "../../shared/crypto/index.js";
import { freePort } from "../../shared/redis/index.js";
import { tinyModelPath } from "../support/models.js";

const distRoot = fileURLToPath(new URL("../../", import.meta.url));
const password = "s3cret-redis-pass";

interface Ran {
  code: number | null;
  ms: number;
  output: string;
}

function start(
  part: string,
  env: Record<string, string>,
): { child: ChildProcess; ended: Promise<Ran>; output: () => string } {
  const startedAt = performance.now();
  const child = spawn(process.execPath, [`${distRoot}${part}`], {
    env: { ...process.env, ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let output = "";
  child.stdout?.on("data", (data: Buffer) => {
    output += data.toString();
  });
  child.stderr?.on("data", (data: Buffer) => {
    output += data.toString();
  });
  const ended = new Promise<Ran>((resolve) => {
    child.once("exit", (code) => resolve({ code, ms: performance.now() - startedAt, output }));
  });
  return { child, ended, output: () => output };
}

async function baseEnv(port: number) {
  return {
    REDIS_URL: `redis://:${password}@127.0.0.1:${port}`,
    REDIS_CONNECT_TIMEOUT_MS: "2000",
    ENCRYPTION_KEY: FernetKey.generate().exportKey(),
    MODELS: `tiny=${await tinyModelPath()}`,
    PORT: String(await freePort()),
    LOG_LEVEL: "info",
  };
}

describe("start-up against an unreachable Redis", () => {
  for (const part of ["orchestrator/main.js", "gpu-worker/main.js"]) {
    it(`${part} exits 1 within the wait, naming REDIS_URL without its password`, async () => {
      const port = await freePort();
      const { ended } = start(part, await baseEnv(port));
      const ran = await ended;
      assert.equal(ran.code, 1, ran.output);
      assert.ok(ran.ms < 20_000, `it took ${Math.round(ran.ms)} ms`);
      assert.match(ran.output, /REDIS_URL=redis:\/\/:\*\*\*@127\.0\.0\.1:\d+/);
      assert.match(ran.output, /refused/);
      assert.match(ran.output, /REDIS_CONNECT_TIMEOUT_MS/);
      assert.ok(!ran.output.includes(password), "the password is never printed");
    });
  }

  it("uses a Redis that comes up while the orchestrator waits", async () => {
    const port = await freePort();
    const env = { ...(await baseEnv(port)), REDIS_CONNECT_TIMEOUT_MS: "20000" };
    const { child, ended, output } = start("orchestrator/main.js", env);
    let redis: ChildProcess | undefined;
    try {
      // Redis comes up only once the orchestrator has found it missing.
      while (!output().includes("waiting for Redis")) {
        assert.equal(child.exitCode, null, output());
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
      redis = spawn(
        "redis-server",
        [
          "--port",
          String(port),
          "--bind",
          "127.0.0.1",
          "--save",
          "",
          "--appendonly",
          "no",
          "--requirepass",
          password,
        ],
        { stdio: "ignore" },
      );
      let health: Response | undefined;
      for (let i = 0; i < 200 && health?.status !== 200; i += 1) {
        health = await fetch(`http://127.0.0.1:${env.PORT}/health`).catch(() => undefined);
        if (health?.status !== 200) await new Promise((resolve) => setTimeout(resolve, 100));
      }
      assert.equal(health?.status, 200, "the API answers once Redis is up");
    } finally {
      child.kill("SIGTERM");
      const ran = await ended;
      redis?.kill("SIGTERM");
      assert.match(ran.output, /waiting for Redis/);
      assert.ok(!ran.output.includes(password));
    }
  });
});
