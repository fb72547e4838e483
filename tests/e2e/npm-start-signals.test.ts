/**
 * `npm start` under a process manager or an out-of-memory killer, which signal one process:
 * - SIGTERM to the npm process reaches the launcher (the script `exec`s it, so npm's forwarding
 *   of the signal lands there rather than on a shell that dies and leaves it running): the stack
 *   drains and stops, nothing is left running, the port is free;
 * - Ctrl-C (SIGINT to npm's process group, which reaches the launcher twice: from the terminal
 *   and forwarded by npm) is one stop, not a "second signal" that cuts the drain short;
 * - the launcher killed with SIGKILL: its orchestrator and gpu-worker notice (their IPC channel to
 *   it closes) and shut down as on SIGTERM, instead of holding the port and the model's memory.
 */
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import { FernetKey } from "../../shared/crypto/index.js";
import { freePort } from "../../shared/redis/index.js";
import { testClient, writeKeysFile } from "../support/client-keys.js";
import { tinyModelPath } from "../support/models.js";
import { type NpmStart, spawnNpmStart, spawnRealNpmStart } from "../support/npm-start.js";
import { commandOf, descendantsOf, isRunning } from "../support/process-tree.js";
import { deleteKeysWithPrefix, testRedisUrl, uniquePrefix } from "../support/redis.js";
import { waitFor } from "../support/wait-for.js";

/** A JSON log line (LOG_FORMAT=json). */
type LogLine = Record<string, unknown> & { message: string; component: string };

const logLines = (started: NpmStart): LogLine[] =>
  started.output
    .join("")
    .split("\n")
    .flatMap((line) => {
      try {
        const parsed = JSON.parse(line) as LogLine;
        return typeof parsed.message === "string" ? [parsed] : [];
      } catch {
        return [];
      }
    });
const linesSaying = (started: NpmStart, message: string) =>
  logLines(started).filter((line) => line.message === message);

const launcherGone =
  "the launcher that started this process is gone (its IPC channel closed): stopping";

/** Whether something listens on the port (a stopped stack must have let it go). */
const portTaken = (port: number) =>
  new Promise<boolean>((resolve) => {
    const server = net.createServer();
    server.once("error", () => resolve(true));
    server.listen(port, "127.0.0.1", () => server.close(() => resolve(false)));
  });

describe("npm start under a signal to one of its processes", { timeout: 600_000 }, () => {
  let redisUrl: string;
  let prefix: string;
  let dataDir: string;
  const key = FernetKey.generate();
  /** Every process a test started, killed at the end should a test have failed. */
  const seen = new Set<number>();

  before(async () => {
    redisUrl = await testRedisUrl();
    prefix = uniquePrefix("npm-signals");
    dataDir = await mkdtemp(path.join(os.tmpdir(), "pool-npm-signals-"));
  });

  after(async () => {
    for (const pid of seen) {
      if (isRunning(pid)) process.kill(pid, "SIGKILL");
    }
    await deleteKeysWithPrefix(redisUrl, prefix);
    await rm(dataDir, { recursive: true, force: true });
  });

  const env = async (port: number) => ({
    REDIS_URL: redisUrl,
    REDIS_PREFIX: prefix,
    DATA_DIR: dataDir,
    PORT: String(port),
    ENCRYPTION_KEY: key.exportKey(),
    MODELS: `tiny=${await tinyModelPath()}`,
    LOG_FORMAT: "json",
  });

  /** Waits until the stack serves; its processes below `started` (npm or the launcher). */
  const serving = async (started: NpmStart): Promise<number[]> => {
    await waitFor(
      () => {
        if (started.launcher.exitCode !== null) {
          assert.fail(`npm start stopped:\n${started.output.join("")}`);
        }
        return (
          linesSaying(started, "model ready").length === 1 &&
          linesSaying(started, "orchestrator ready").length === 1
        );
      },
      120_000,
      "the stack to serve",
    );
    const pids = descendantsOf(started.launcher.pid ?? 0);
    for (const pid of pids) seen.add(pid);
    const parts = pids.filter((pid) => /(orchestrator|gpu-worker)\/main\.js/.test(commandOf(pid)));
    assert.equal(parts.length, 2, pids.map(commandOf).join("\n"));
    return pids;
  };

  const allGone = (pids: number[], what: string) =>
    waitFor(() => pids.every((pid) => !isRunning(pid)), 90_000, what);

  it("SIGTERM to the npm process stops the launcher and both parts, freeing the port", async () => {
    const port = await freePort();
    const started = spawnRealNpmStart(await env(port));
    const pids = await serving(started);
    started.launcher.kill("SIGTERM");
    await allGone(pids, "the launcher and both parts to stop");
    assert.equal(await started.exited, 0, started.output.join(""));
    assert.equal(await portTaken(port), false, "the port is free");
    const stopping = linesSaying(started, "stopping the local stack");
    assert.deepEqual(
      stopping.map((line) => line.signal),
      ["SIGTERM"],
    );
    assert.equal(linesSaying(started, "orchestrator stopped").length, 1);
    assert.equal(linesSaying(started, "gpu-worker stopped").length, 1);
  });

  it("Ctrl-C (SIGINT to npm's process group) is one stop, with the parts drained", async () => {
    const port = await freePort();
    const started = spawnRealNpmStart(await env(port), true);
    const pids = await serving(started);
    process.kill(-(started.launcher.pid ?? 0), "SIGINT");
    await allGone(pids, "the launcher and both parts to stop");
    await started.exited;
    assert.equal(await portTaken(port), false, "the port is free");
    assert.equal(linesSaying(started, "stopping the local stack").length, 1);
    assert.equal(linesSaying(started, "orchestrator stopped").length, 1, "drained, not cut short");
    assert.equal(linesSaying(started, "gpu-worker stopped").length, 1, "drained, not cut short");
    assert.equal(linesSaying(started, "second signal: exiting now").length, 0);
    assert.equal(linesSaying(started, launcherGone).length, 0, "the launcher stopped them");
  });

  it("SIGHUP to the orchestrator under npm start reloads its client keys, and stops nothing", async () => {
    const port = await freePort();
    const keys = await writeKeysFile([testClient("acme")]);
    try {
      const started = spawnNpmStart({ ...(await env(port)), CLIENT_KEYS_FILE: keys.file });
      const pids = await serving(started);
      // The launcher keeps SIGHUP's default (a closed terminal stops the stack): the orchestrator
      // is signalled itself, as docs/operations.md says.
      const orchestrator = pids.find((pid) => /orchestrator\/main\.js/.test(commandOf(pid)));
      process.kill(orchestrator ?? 0, "SIGHUP");
      await waitFor(
        () =>
          linesSaying(started, "client keys reloaded").some(
            (line) => line.reason === "SIGHUP" && line.component === "orchestrator",
          ),
        30_000,
        "the orchestrator's reload",
      );
      assert.ok(pids.every(isRunning), "every process still runs");
      assert.equal(linesSaying(started, "stopping the local stack").length, 0);
      started.launcher.kill("SIGTERM");
      await allGone(pids, "the launcher and both parts to stop");
      assert.equal(await started.exited, 0, started.output.join(""));
    } finally {
      await keys.remove();
    }
  });

  it("the launcher killed with SIGKILL: its parts see it gone and stop, freeing the port", async () => {
    const port = await freePort();
    const started = spawnNpmStart(await env(port));
    const parts = await serving(started);
    started.launcher.kill("SIGKILL");
    await allGone(parts, "the orchestrator and the gpu-worker to stop");
    assert.equal(await portTaken(port), false, "the port is free");
    const gone = linesSaying(started, launcherGone);
    assert.deepEqual(gone.map((line) => line.component).sort(), ["gpu-worker", "orchestrator"]);
    assert.equal(linesSaying(started, "orchestrator stopped").length, 1);
    assert.equal(linesSaying(started, "gpu-worker stopped").length, 1);
  });
});
