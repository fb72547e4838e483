/**
 * `npm start`'s launcher as a user runs it with no configuration but Redis: it creates the local
 * key file (0600) and the demo model, runs both parts, serves the reference client, and stops
 * both parts cleanly on SIGINT.
 */
import assert from "node:assert/strict";
import { type ChildProcess, spawnSync } from "node:child_process";
import { mkdtemp, readFile, rm, stat } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { freePort } from "../../shared/redis/index.js";
import { spawnNpmStart } from "../support/npm-start.js";
import { deleteKeysWithPrefix, testRedisUrl, uniquePrefix } from "../support/redis.js";
import { waitFor } from "../support/wait-for.js";

const distRoot = fileURLToPath(new URL("../../", import.meta.url));

describe("npm start (the local stack launcher)", () => {
  let launcher: ChildProcess;
  let dataDir: string;
  let redisUrl: string;
  let prefix: string;
  let url: string;
  let output: string[] = [];

  before(async () => {
    redisUrl = await testRedisUrl();
    prefix = uniquePrefix("start");
    dataDir = await mkdtemp(path.join(os.tmpdir(), "pool-start-"));
    const port = await freePort();
    url = `http://127.0.0.1:${port}`;
    const started = spawnNpmStart({
      REDIS_URL: redisUrl,
      REDIS_PREFIX: prefix,
      DATA_DIR: dataDir,
      PORT: String(port),
    });
    launcher = started.launcher;
    output = started.output;
    const ready = async () => {
      if (launcher.exitCode !== null) throw new Error(`the stack exited:\n${output.join("")}`);
      try {
        const health = (await (await fetch(`${url}/health`)).json()) as {
          models: { state: string }[];
        };
        return health.models[0]?.state === "ready";
      } catch {
        return false; // Not up yet.
      }
    };
    await waitFor(ready, 60_000, "the stack to start", 100).catch((error: Error) => {
      throw new Error(`${error.message}:\n${output.join("")}`);
    });
  });

  after(async () => {
    if (launcher.exitCode === null) launcher.kill("SIGKILL");
    await deleteKeysWithPrefix(redisUrl, prefix);
    await rm(dataDir, { recursive: true, force: true });
  });

  it("creates a 0600 key file, logs its path but never the key, and serves the demo model", async () => {
    const keyFile = path.join(dataDir, "encryption.key");
    const info = await stat(keyFile);
    assert.equal(info.mode & 0o777, 0o600);
    const key = (await readFile(keyFile, "utf8")).trim();
    const logs = output.join("");
    assert.ok(logs.includes(keyFile), "the key file's path is logged");
    assert.ok(!logs.includes(key), "the key is not");
    assert.match(logs, /built-in demo model/);
    const health = (await (await fetch(`${url}/health`)).json()) as { models: { name: string }[] };
    assert.deepEqual(
      health.models.map((model) => model.name),
      ["demo"],
    );
  });

  it("serves the reference client, which finds the key in the data folder", () => {
    const client = spawnSync(
      process.execPath,
      // Greedy: a sampled text of the random demo model may end at its first token.
      [
        path.join(distRoot, "client", "cli", "main.js"),
        "--url",
        url,
        "-n",
        "12",
        "-t",
        "0",
        "the dog",
      ],
      {
        env: { PATH: process.env.PATH ?? "", DATA_DIR: dataDir },
        encoding: "utf8",
        timeout: 60_000,
      },
    );
    assert.equal(client.status, 0, client.stderr);
    assert.ok(client.stdout.trim().length > 0, "text was printed");
    assert.match(client.stderr, /status=COMPLETED/);
  });

  it("stops both parts on SIGINT and exits 0", async () => {
    const exited = new Promise<number | null>((resolve) =>
      launcher.once("exit", (code) => resolve(code)),
    );
    launcher.kill("SIGINT");
    assert.equal(await exited, 0);
    const logs = output.join("");
    assert.match(logs, /orchestrator stopped/);
    assert.match(logs, /gpu-worker stopped/);
    // No part is left running: the port is free again.
    await assert.rejects(fetch(`${url}/health`));
  });
});
