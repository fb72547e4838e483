/**
 * SIGTERM after Redis is gone: every step of a shutdown that talks to Redis is bounded, so both
 * processes still exit, and exit 0, within SHUTDOWN_TIMEOUT_MS plus a small margin; the running
 * job is cancelled in its model thread rather than waited for.
 */
import assert from "node:assert/strict";
import type { ChildProcess } from "node:child_process";
import { after, before, describe, it } from "node:test";
import { type RedisServerProcess, startRedisServer } from "../../shared/redis/index.js";
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
    assert.equal(worker.code, 0, `gpu-worker exit code\n${stack.logs.join("\n")}`);
    assert.equal(orch.code, 0, `orchestrator exit code\n${stack.logs.join("\n")}`);
    // The generation was aborted in its thread, not left to run to 4,000 tokens.
    const finished = stack.logs.find(
      (line) => line.includes("job finished") && line.includes(`jobId=${job.id}`),
    );
    assert.ok(
      finished,
      `the gpu-worker reports how the generation ended\n${stack.logs.join("\n")}`,
    );
    process.stdout.write(`# ${finished.slice(finished.indexOf("job finished"))}\n`);
    assert.match(finished, /finishReason=cancelled/);
    const completion = Number(/completionTokens=(\d+)/.exec(finished)?.[1]);
    assert.ok(completion > 0 && completion < 4000, "it stopped part way");
    assert.ok(stack.logs.some((line) => line.includes("gpu-worker stopped")));
    assert.ok(stack.logs.some((line) => line.includes("orchestrator stopped")));
  });
});
