/**
 * Start-up against a Redis that answers but refuses the configuration in REDIS_URL (a database it
 * does not have, a wrong password, none where one is required): every process that connects to
 * Redis (orchestrator, gpu-worker, dashboard, npm start's launcher) exits 2 (`CONFIG_INVALID`) at
 * once, long before REDIS_CONNECT_TIMEOUT_MS, naming REDIS_URL without its password and saying what
 * to change; none ever says it is ready or listening.
 */
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import { FernetKey } from "../../shared/crypto/index.js";
import { freePort } from "../../shared/redis/index.js";
import { tinyModelPath } from "../support/models.js";
import { runEntryToExit } from "../support/run-entry.js";
import { type SecureRedis, startSecureRedis } from "../support/secure-redis.js";

/** Far longer than any refusal may take: a process that waits for Redis instead fails the test. */
const connectTimeoutMs = 60_000;
/** A generous bound for a loaded machine; the refusal itself takes well under a second. */
const refusalBoundMs = 20_000;

const entries = [
  "orchestrator/main.js",
  "gpu-worker/main.js",
  "orchestrator/dashboard/main.js",
  "scripts/start.js",
];

describe("start-up against a Redis that refuses REDIS_URL's configuration", () => {
  let redis: SecureRedis;
  let dataDir: string;
  let port: number;

  before(async () => {
    redis = await startSecureRedis();
    port = Number(new URL(redis.url).port);
    dataDir = await mkdtemp(path.join(os.tmpdir(), "pool-refused-"));
  });
  after(async () => {
    await redis.close();
    await rm(dataDir, { recursive: true, force: true });
  });

  const cases = [
    {
      what: "a database Redis does not have",
      url: () => `${redis.url}/99`,
      shown:
        /REDIS_URL=redis:\/\/:\*\*\*@127\.0\.0\.1:\d+\/99: Redis refused the connection: it has no database 99/,
    },
    {
      what: "a wrong password",
      url: () => `redis://:not-${redis.password}@127.0.0.1:${port}`,
      shown:
        /REDIS_URL=redis:\/\/:\*\*\*@127\.0\.0\.1:\d+: Redis refused the connection: the user name or password in REDIS_URL is wrong/,
    },
    {
      what: "no password where Redis requires one",
      url: () => `redis://127.0.0.1:${port}`,
      shown:
        /REDIS_URL=redis:\/\/127\.0\.0\.1:\d+: Redis refused the connection: it requires a password and REDIS_URL gives none/,
    },
  ];

  for (const { what, url, shown } of cases) {
    for (const entry of entries) {
      it(`${entry} exits 2 at once on ${what}`, async () => {
        const ran = await runEntryToExit(
          entry,
          {
            REDIS_URL: url(),
            REDIS_CONNECT_TIMEOUT_MS: String(connectTimeoutMs),
            ENCRYPTION_KEY: FernetKey.generate().exportKey(),
            MODELS: `tiny=${await tinyModelPath()}`,
            PORT: String(await freePort()),
            DASHBOARD_PORT: String(await freePort()),
            DATA_DIR: dataDir,
            LLAMA_GPU: "off",
            LOG_LEVEL: "info",
          },
          refusalBoundMs,
        );
        assert.equal(ran.code, 2, ran.output);
        assert.match(ran.output, shown);
        assert.match(ran.output, /CONFIG_INVALID/);
        assert.doesNotMatch(ran.output, /waiting for Redis|ready|listening/);
        assert.ok(!ran.output.includes(redis.password), "the password is never printed");
      });
    }
  }
});
