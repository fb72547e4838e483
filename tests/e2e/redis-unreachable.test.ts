/**
 * Start-up against a Redis that is not there: each process waits REDIS_CONNECT_TIMEOUT_MS (5 s by
 * default) for it, then exits 1 with a message that names REDIS_URL (its password hidden), why and what to check,
 * instead of retrying for ever without listening. A Redis that comes up within the wait is used.
 */
import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { describe, it } from "node:test";
import { FernetKey } from "../../shared/crypto/index.js";
import { freePort } from "../../shared/redis/index.js";
import { tinyModelPath } from "../support/models.js";
import { runEntry } from "../support/run-entry.js";
import { waitFor } from "../support/wait-for.js";

const password = "s3cret-redis-pass";

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
      const { ended } = runEntry(part, await baseEnv(port));
      const ran = await ended;
      assert.equal(ran.code, 1, ran.output);
      assert.ok(ran.ms < 20_000, `it took ${Math.round(ran.ms)} ms`);
      assert.match(ran.output, /REDIS_URL=redis:\/\/:\*\*\*@127\.0\.0\.1:\d+/);
      assert.match(ran.output, /refused/);
      assert.match(ran.output, /REDIS_CONNECT_TIMEOUT_MS/);
      assert.ok(!ran.output.includes(password), "the password is never printed");
    });
  }

  for (const entry of ["orchestrator/main.js", "scripts/start.js"]) {
    it(`${entry} gives up within a few seconds by default`, async () => {
      const port = await freePort();
      // Blank is unset: the default wait (it was 30 s).
      const env = { ...(await baseEnv(port)), REDIS_CONNECT_TIMEOUT_MS: "" };
      const ran = await runEntry(entry, env).ended;
      assert.equal(ran.code, 1, ran.output);
      assert.match(
        ran.output,
        /could not reach Redis at REDIS_URL=\S+ within 5 s: the connection was refused/,
      );
      assert.ok(ran.ms < 15_000, `it took ${Math.round(ran.ms)} ms`);
    });
  }

  it("uses a Redis that comes up while the orchestrator waits", async () => {
    const port = await freePort();
    const env = { ...(await baseEnv(port)), REDIS_CONNECT_TIMEOUT_MS: "20000" };
    const { child, ended, output } = runEntry("orchestrator/main.js", env);
    let redis: ChildProcess | undefined;
    try {
      // Redis comes up only once the orchestrator has found it missing.
      await waitFor(
        () => {
          assert.equal(child.exitCode, null, output());
          return output().includes("waiting for Redis");
        },
        20_000,
        "the orchestrator to wait for Redis",
        50,
      );
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
      await waitFor(
        async () => {
          const health = await fetch(`http://127.0.0.1:${env.PORT}/health`).catch(() => undefined);
          return health?.status === 200;
        },
        20_000,
        "the API to answer once Redis is up",
        100,
      );
    } finally {
      child.kill("SIGTERM");
      const ran = await ended;
      redis?.kill("SIGTERM");
      assert.match(ran.output, /waiting for Redis/);
      assert.ok(!ran.output.includes(password));
    }
  });
});
