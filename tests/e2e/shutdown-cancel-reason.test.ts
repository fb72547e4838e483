/**
 * A job still running when the orchestrator's shutdown deadline passes is cancelled by the
 * shutdown, and says so: its caller sees `CANCELLED` with an error naming the shutdown, and the
 * log line is the shutdown's, never "cancelled by the caller" (which a caller's `/cancel` logs).
 * The stopping orchestrator, and a stopping gpu-worker likewise, say at the start how many jobs
 * they wait for and for how long at most, then that they cancel those left.
 */
import assert from "node:assert/strict";
import type { ChildProcess } from "node:child_process";
import { after, before, describe, it } from "node:test";
import { tinyModelPath } from "../support/models.js";
import { TestStack } from "../support/stack.js";
import { waitFor } from "../support/wait-for.js";

describe("a job left running at shutdown", () => {
  let stack: TestStack;

  before(async () => {
    stack = await TestStack.start({
      models: `tiny=${await tinyModelPath()}`,
      env: { SHUTDOWN_TIMEOUT_MS: "1000", LOG_FORMAT: "json" },
      label: "shutdown-reason",
    });
  });

  after(async () => {
    await stack?.stop();
  });

  const parsedLines = (lines: readonly string[]) =>
    lines.flatMap((line) => {
      try {
        return [JSON.parse(line) as Record<string, unknown>];
      } catch {
        return [];
      }
    });
  const logged = (message: string, jobId: string) =>
    parsedLines(stack.logs).some((line) => line.message === message && line.jobId === jobId);
  /** The fields of `part`'s lines saying `message`, but for the line's own keys. */
  const linesOf = (part: ChildProcess, message: string) =>
    parsedLines(stack.logsOf(part))
      .filter((line) => line.message === message)
      .map(({ time, level, component, message, ...fields }) => fields);

  it("is reported cancelled by the shutdown, not by its caller", async () => {
    // A caller's own cancel, for contrast: the wording the shutdown must not use.
    const cancelled = await stack.run({ prompt: "the dog" });
    await stack.post(`/cancel/${cancelled.id}`, {});
    await waitFor(
      () => logged("job cancelled by the caller", cancelled.id),
      10_000,
      "the caller's cancel line",
    );

    // Greedy and long: still generating when the 1 s shutdown deadline passes.
    const job = await stack.run({
      prompt: "the dog",
      sampling_params: { max_tokens: 4000, temperature: 0 },
    });
    await waitFor(
      async () =>
        ((await stack.get(`/status/${job.id}`)) as { status: string }).status === "IN_PROGRESS",
      60_000,
      "the job to run",
    );
    const orchestrator = stack.orchestrator;
    assert.ok(orchestrator);
    const exited = new Promise((resolve) => orchestrator.once("exit", resolve));
    orchestrator.kill("SIGTERM");

    // What a caller polling /stream sees while the stopping orchestrator still answers.
    let view: { status: string; error?: string } = { status: "IN_PROGRESS" };
    await waitFor(
      async () => {
        view = (await stack.get(`/stream/${job.id}`)) as typeof view;
        return view.status !== "IN_PROGRESS";
      },
      30_000,
      "the job's end",
    );
    assert.equal(view.status, "CANCELLED");
    const error = JSON.parse(view.error ?? "{}") as { code?: string; message?: string };
    assert.equal(error.code, "INTERNAL");
    assert.match(error.message ?? "", /orchestrator shut down before the job finished/);

    assert.equal(await exited, 0);
    assert.ok(logged("job cancelled: the orchestrator is shutting down", job.id));
    assert.ok(!logged("job cancelled by the caller", job.id), "not the caller's wording");
    assert.deepEqual(linesOf(orchestrator, "waiting for unfinished jobs to end before stopping"), [
      { jobs: 1, shutdownTimeoutMs: 1000 },
    ]);
    const cancelling = linesOf(
      orchestrator,
      "cancelling the jobs still unfinished at SHUTDOWN_TIMEOUT_MS",
    );
    assert.equal(cancelling.length, 1);
    assert.equal(cancelling[0]?.jobs, 1);
    assert.ok(Number(cancelling[0]?.waitedMs) >= 1000);
  });

  it("a stopping gpu-worker says what it waits for, then cancels it at the deadline", async () => {
    await stack.restartOrchestrator("SIGTERM");
    const job = await stack.run({
      prompt: "the dog",
      sampling_params: { max_tokens: 4000, temperature: 0 },
    });
    await waitFor(
      async () =>
        ((await stack.get(`/status/${job.id}`)) as { status: string }).status === "IN_PROGRESS",
      60_000,
      "the job to run",
    );
    const [gpuWorker] = stack.gpuWorkers;
    assert.ok(gpuWorker);
    await stack.killGpuWorkers("SIGTERM");
    assert.equal(gpuWorker.exitCode, 0);
    assert.deepEqual(linesOf(gpuWorker, "waiting for running jobs to end before stopping"), [
      { jobs: 1, shutdownTimeoutMs: 1000 },
    ]);
    const cancelling = linesOf(
      gpuWorker,
      "cancelling the jobs still running at SHUTDOWN_TIMEOUT_MS",
    );
    assert.equal(cancelling.length, 1);
    assert.equal(cancelling[0]?.jobs, 1);
    assert.ok(Number(cancelling[0]?.waitedMs) >= 1000);
  });
});
