/**
 * SIGTERM after Redis is gone: every step of a shutdown that talks to Redis is bounded, so both
 * processes still exit, and exit 0, within SHUTDOWN_TIMEOUT_MS plus a small margin; the running
 * job is cancelled in its model thread rather than waited for. In RunPod mode the held job's
 * error is still posted to the platform.
 */
import assert from "node:assert/strict";
import type { ChildProcess } from "node:child_process";
import { after, before, describe, it } from "node:test";
import { type RedisServerProcess, startRedisServer } from "../../shared/redis/index.js";
import { FakeRunpodPlatform } from "../fakes/runpod-platform.js";
import { tinyModelPath } from "../support/models.js";
import { TestStack } from "../support/stack.js";

const shutdownTimeoutMs = 1000;
/** Generous on a loaded 2-core machine; the hang this guards against never ended. */
const boundMs = shutdownTimeoutMs + 15_000;

function exitOf(child: ChildProcess, since: number): Promise<{ code: number | null; ms: number }> {
  return new Promise((resolve) => {
    const done = () => resolve({ code: child.exitCode, ms: Math.round(performance.now() - since) });
    if (child.exitCode !== null || child.signalCode !== null) done();
    else child.once("exit", done);
  });
}

function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    promise,
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${what} did not happen within ${ms} ms`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

/** Sends SIGTERM to both processes; their exit codes and times, or a rejection past the bound. */
async function terminate(
  stack: TestStack,
): Promise<{ gpuWorker: number | null; orchestrator: number | null }> {
  const [gpuWorker] = stack.gpuWorkers;
  const { orchestrator } = stack;
  assert.ok(gpuWorker && orchestrator);
  const signalledAt = performance.now();
  stack.signal("SIGTERM");
  const [worker, orch] = await stack.explain(
    within(
      Promise.all([exitOf(gpuWorker, signalledAt), exitOf(orchestrator, signalledAt)]),
      boundMs,
      "both processes exiting",
    ),
  );
  process.stdout.write(
    `# exit after SIGTERM without Redis: gpu-worker ${worker.ms} ms, orchestrator ${orch.ms} ms\n`,
  );
  return { gpuWorker: worker.code, orchestrator: orch.code };
}

/** The gpu-worker's account of how a job's generation ended: it was aborted part way. */
function assertAborted(stack: TestStack, jobId: string, maxTokens: number): void {
  const finished = stack.logs.find(
    (line) => line.includes("job finished") && line.includes(`jobId=${jobId}`),
  );
  assert.ok(finished, `the gpu-worker reports how the generation ended\n${stack.logs.join("\n")}`);
  process.stdout.write(`# ${finished.slice(finished.indexOf("job finished"))}\n`);
  assert.match(finished, /finishReason=cancelled/);
  const completion = Number(/completionTokens=(\d+)/.exec(finished)?.[1]);
  assert.ok(completion > 0 && completion < maxTokens, "it stopped part way");
  assert.ok(stack.logs.some((line) => line.includes("gpu-worker stopped")));
  assert.ok(stack.logs.some((line) => line.includes("orchestrator stopped")));
}

describe("SIGTERM with Redis gone", () => {
  let redis: RedisServerProcess;
  let stack: TestStack;

  before(async () => {
    // A Redis of this test's own, to stop.
    redis = await startRedisServer();
    stack = await TestStack.start({
      models: `tiny=${await tinyModelPath()}`,
      redisUrl: redis.url,
      env: { CONTEXT_SIZE: "4096", SHUTDOWN_TIMEOUT_MS: String(shutdownTimeoutMs) },
      label: "no-redis-stop",
    });
  });

  after(async () => {
    await stack?.stop();
    await redis?.close();
  });

  it("both processes exit 0 within the shutdown timeout plus a margin, the job cancelled", async () => {
    const job = await stack.run({
      prompt: "the dog",
      sampling_params: { max_tokens: 4000, temperature: 0 },
    });
    // The job generates: its first chunk came back through Redis.
    await stack.explain(
      within(
        (async () => {
          for (;;) {
            const page = (await stack.get(`/stream/${job.id}?wait=10000`)) as {
              stream: { output: unknown }[];
            };
            if (page.stream.length > 0) return;
          }
        })(),
        30_000,
        "the first chunk",
      ),
    );
    await redis.close();
    // While Redis is gone, /health says so at once instead of hanging.
    const health = await fetch(`${stack.url}/health`, { signal: AbortSignal.timeout(15_000) });
    assert.equal(health.status, 503);
    assert.deepEqual(await health.json(), { error: "Redis does not answer; try again shortly" });
    const codes = await terminate(stack);
    assert.deepEqual(codes, { gpuWorker: 0, orchestrator: 0 }, stack.logs.join("\n"));
    assertAborted(stack, job.id, 4000);
  });
});

describe("SIGTERM with Redis gone, RunPod mode", () => {
  const apiKey = "rp-no-redis-key";
  let redis: RedisServerProcess;
  let platform: FakeRunpodPlatform;
  let stack: TestStack;

  before(async () => {
    redis = await startRedisServer();
    platform = await FakeRunpodPlatform.start({ apiKey, holdMs: 300 });
    stack = await TestStack.start({
      models: `tiny=${await tinyModelPath()}`,
      runpod: platform.env(),
      redisUrl: redis.url,
      env: {
        MODEL_SEQUENCES: "1",
        CONTEXT_SIZE: "4096",
        SHUTDOWN_TIMEOUT_MS: String(shutdownTimeoutMs),
        // The fault watch must not end the worker first: this is about SIGTERM.
        JOB_LOCK_MS: "60000",
      },
      label: "rp-no-redis-stop",
    });
  });

  after(async () => {
    await stack?.stop();
    await platform?.close();
    await redis?.close();
  });

  it("both processes exit 0, the held job's error posted", async () => {
    platform.enqueue({
      id: "held",
      input: {
        encrypted_input: stack.encrypt({
          prompt: "the dog",
          sampling_params: { max_tokens: 4000, temperature: 0 },
        }),
      },
    });
    await stack.explain(
      platform.until(() => platform.streamed("held").length > 0, 30_000, "the job to stream"),
    );
    await redis.close();
    const codes = await terminate(stack);
    assert.deepEqual(codes, { gpuWorker: 0, orchestrator: 0 }, stack.logs.join("\n"));
    assertAborted(stack, "held", 4000);
    const post = platform.output("held");
    assert.ok(post, "the held job was posted");
    assert.equal(post.body.stopPod, undefined);
    const error = JSON.parse(post.body.error as string) as { code: string; message: string };
    assert.equal(error.code, "INTERNAL");
    assert.match(error.message, /shut down before the job finished/);
  });
});
