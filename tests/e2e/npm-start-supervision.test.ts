/**
 * `npm start` keeps its stack up: a gpu-worker killed with SIGKILL is restarted with a growing
 * wait, logged with why; the API answers throughout; a job submitted while the gpu-worker is down
 * waits in its queue and completes once it is back; SIGTERM still stops everything with exit 0.
 */
import assert from "node:assert/strict";
import { type ChildProcess, spawnSync } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import { FernetKey } from "../../shared/crypto/index.js";
import { freePort } from "../../shared/redis/index.js";
import { tinyModelPath } from "../support/models.js";
import { npmStartEnv, spawnNpmStart, startEntry } from "../support/npm-start.js";
import { deleteKeysWithPrefix, testRedisUrl, uniquePrefix } from "../support/redis.js";
import { waitFor } from "../support/wait-for.js";

/** A JSON log line (LOG_FORMAT=json). */
type LogLine = Record<string, unknown> & { message: string; component: string };

interface JobView {
  id: string;
  status: string;
  output?: unknown[];
  error?: string;
}

describe("npm start supervises its gpu-worker", () => {
  let launcher: ChildProcess;
  let exited: Promise<number | null>;
  let redisUrl: string;
  let prefix: string;
  let dataDir: string;
  let url: string;
  const key = FernetKey.generate();
  let output: string[] = [];

  const logLines = (): LogLine[] =>
    output
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
  const linesSaying = (message: string) => logLines().filter((line) => line.message === message);
  const restartLine = (restart: number) =>
    linesSaying("the gpu-worker stopped: restarting it").find((line) => line.restart === restart);

  /** Every process the launcher started, so that a failed test leaves none running. */
  const seenPids = new Set<number>();
  /** The launcher's child running `part` now, if any. */
  const partPid = (part: string): number | undefined => {
    const found = spawnSync("pgrep", ["-P", String(launcher.pid), "-f", `${part}/main.js`], {
      encoding: "utf8",
    });
    const pid = Number(found.stdout.trim().split("\n")[0]);
    if (!(pid > 0)) return undefined;
    seenPids.add(pid);
    return pid;
  };
  const gpuWorkerPid = () => partPid("gpu-worker");

  const submit = async (maxTokens: number): Promise<JobView> => {
    const request = {
      prompt: "the dog",
      sampling_params: { max_tokens: maxTokens, temperature: 0 },
    };
    const response = await fetch(`${url}/run`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ input: { encrypted_input: key.encrypt(JSON.stringify(request)) } }),
    });
    assert.equal(response.status, 200);
    return (await response.json()) as JobView;
  };
  const status = async (id: string): Promise<JobView> =>
    (await (await fetch(`${url}/status/${id}`)).json()) as JobView;
  const waitForEnd = async (id: string, timeoutMs: number): Promise<JobView> => {
    let view: JobView = { id, status: "IN_QUEUE" };
    await waitFor(
      async () => {
        view = await status(id);
        return !["IN_QUEUE", "IN_PROGRESS"].includes(view.status);
      },
      timeoutMs,
      `the end of job ${id}`,
    );
    return view;
  };

  before(async () => {
    redisUrl = await testRedisUrl();
    prefix = uniquePrefix("supervise");
    dataDir = await mkdtemp(path.join(os.tmpdir(), "pool-supervise-"));
    url = `http://127.0.0.1:${await freePort()}`;
    const started = spawnNpmStart({
      REDIS_URL: redisUrl,
      REDIS_PREFIX: prefix,
      DATA_DIR: dataDir,
      PORT: new URL(url).port,
      ENCRYPTION_KEY: key.exportKey(),
      MODELS: `tiny=${await tinyModelPath()}`,
      LOG_FORMAT: "json",
      // The job running at the crash is found once its lock lapses (or the registry heartbeat
      // finds it first): seconds, not the default 30 s.
      JOB_LOCK_MS: "5000",
    });
    launcher = started.launcher;
    output = started.output;
    exited = started.exited;
    await waitFor(
      () => {
        if (launcher.exitCode !== null) assert.fail(`the stack stopped:\n${output.join("")}`);
        return (
          linesSaying("model ready").length === 1 && linesSaying("orchestrator ready").length === 1
        );
      },
      90_000,
      "the stack to start",
    );
    partPid("orchestrator");
  });

  after(async () => {
    if (launcher.exitCode === null) {
      partPid("orchestrator");
      gpuWorkerPid();
      launcher.kill("SIGKILL");
      // The launcher's children have process groups of their own: a killed launcher leaves them.
      for (const pid of seenPids) {
        try {
          process.kill(pid, "SIGKILL");
        } catch {
          // Already gone.
        }
      }
    }
    await deleteKeysWithPrefix(redisUrl, prefix);
    await rm(dataDir, { recursive: true, force: true });
  });

  it("restarts a killed gpu-worker while the API answers, and the queued job completes", async () => {
    // A long greedy job that has streamed text when the gpu-worker dies under it (a job that had
    // streamed nothing would be put back on its queue and complete on the restarted gpu-worker).
    const running = await submit(4000);
    await waitFor(
      async () => {
        const part = (await (await fetch(`${url}/stream/${running.id}`)).json()) as {
          stream?: unknown[];
        };
        return (part.stream ?? []).length > 0;
      },
      60_000,
      "the long job's first text",
    );
    const firstPid = gpuWorkerPid();
    assert.ok(firstPid, `the gpu-worker's pid:\n${output.join("")}`);
    process.kill(firstPid, "SIGKILL");

    await waitFor(() => restartLine(1) !== undefined, 30_000, "the restart line");
    const first = restartLine(1);
    assert.equal(first?.level, "error");
    assert.equal(first?.component, "start");
    assert.equal(first?.part, "gpu-worker");
    assert.equal(first?.signal, "SIGKILL");
    assert.equal(first?.code, null);
    assert.equal(first?.restartInMs, 1000);

    // Submitted while no gpu-worker runs: it waits in its queue.
    const queued = await submit(12);
    assert.equal(queued.status, "IN_QUEUE");
    assert.equal((await status(queued.id)).status, "IN_QUEUE");

    // The API answers all through the outage, until the new gpu-worker serves the model again.
    let answers = 0;
    await waitFor(
      async () => {
        if (linesSaying("model ready").length >= 2) return true;
        const health = await fetch(`${url}/health`);
        assert.equal(health.status, 200);
        answers += 1;
        if (launcher.exitCode !== null) assert.fail(`the launcher stopped:\n${output.join("")}`);
        return false;
      },
      120_000,
      "the new gpu-worker to serve the model",
      100,
    );
    assert.ok(answers > 0);
    assert.equal(linesSaying("restarting the gpu-worker").length, 1);
    const secondPid = gpuWorkerPid();
    assert.ok(secondPid && secondPid !== firstPid, "a new gpu-worker process runs");

    const done = await waitForEnd(queued.id, 60_000);
    assert.equal(done.status, "COMPLETED", JSON.stringify(done));
    assert.ok((done.output ?? []).length > 0, "it streamed output");

    // The job the crash cut short after its first text goes on, on the restarted gpu-worker, from
    // the text it had streamed: completed in two runs, its chunks numbered once across the cut.
    const lost = await waitForEnd(running.id, 90_000);
    assert.equal(lost.status, "COMPLETED", JSON.stringify({ ...lost, output: undefined }));
    const chunks = (lost.output ?? []) as { seq: number; attempts?: number }[];
    assert.deepEqual(
      chunks.map((chunk) => chunk.seq),
      chunks.map((_, index) => index),
    );
    assert.equal(chunks.at(-1)?.attempts, 2, "continued once");

    // A second crash in a row waits longer.
    process.kill(secondPid, "SIGKILL");
    await waitFor(() => restartLine(2) !== undefined, 30_000, "the second restart line");
    const second = restartLine(2);
    assert.equal(second?.signal, "SIGKILL");
    assert.equal(second?.restartInMs, 2000);
    assert.ok(Number(second?.restartInMs) > Number(first?.restartInMs), "the backoff grows");
    await waitFor(() => linesSaying("model ready").length === 3, 90_000, "the second restart");
    const again = await submit(12);
    assert.equal((await waitForEnd(again.id, 60_000)).status, "COMPLETED");
  });

  it("restarts a killed orchestrator while the gpu-worker runs on", async () => {
    const gpuWorker = gpuWorkerPid();
    const orchestrator = partPid("orchestrator");
    assert.ok(orchestrator);
    process.kill(orchestrator, "SIGKILL");
    const crashLine = () =>
      linesSaying("the orchestrator stopped: restarting it").find((line) => line.restart === 1);
    await waitFor(() => crashLine() !== undefined, 30_000, "the orchestrator's restart line");
    assert.equal(crashLine()?.signal, "SIGKILL");
    assert.equal(crashLine()?.restartInMs, 1000);
    await waitFor(
      () => linesSaying("orchestrator ready").length === 2,
      60_000,
      "the orchestrator's restart",
    );
    assert.equal(gpuWorkerPid(), gpuWorker, "the same gpu-worker serves on");
    const job = await submit(12);
    assert.equal((await waitForEnd(job.id, 60_000)).status, "COMPLETED");
  });

  it("still stops both parts on SIGTERM and exits 0", async () => {
    launcher.kill("SIGTERM");
    assert.equal(await exited, 0, output.join(""));
    // Each part was killed before (no goodbye), and stopped cleanly once now.
    assert.equal(linesSaying("orchestrator stopped").length, 1);
    assert.equal(linesSaying("gpu-worker stopped").length, 1);
    await assert.rejects(fetch(`${url}/health`));
    assert.ok(!output.join("").includes("cancelled by the caller"));
  });
});

describe("npm start with a part that cannot start", () => {
  it("does not restart it: it stops the stack with the part's exit code", async () => {
    const redisUrl = await testRedisUrl();
    const prefix = uniquePrefix("supervise-fail");
    const dataDir = await mkdtemp(path.join(os.tmpdir(), "pool-supervise-fail-"));
    try {
      const run = spawnSync(process.execPath, [startEntry], {
        env: npmStartEnv({
          REDIS_URL: redisUrl,
          REDIS_PREFIX: prefix,
          DATA_DIR: dataDir,
          PORT: String(await freePort()),
          MODELS: `tiny=${path.join(dataDir, "missing.gguf")}`,
          LOG_FORMAT: "json",
        }),
        encoding: "utf8",
        timeout: 90_000,
      });
      const lines = run.stdout
        .split("\n")
        .filter((line) => line.startsWith("{"))
        .map((line) => JSON.parse(line) as LogLine);
      assert.equal(run.status, 1, run.stdout + run.stderr);
      const stop = lines.find(
        (line) => line.message === "a part of the stack could not start: stopping the rest",
      );
      assert.equal(stop?.part, "gpu-worker", run.stdout);
      assert.equal(stop?.code, 1);
      assert.ok(!lines.some((line) => String(line.message).includes("restarting")));
    } finally {
      await deleteKeysWithPrefix(redisUrl, prefix);
      await rm(dataDir, { recursive: true, force: true });
    }
  });
});
