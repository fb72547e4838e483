/**
 * After many jobs, the pool holds nothing of them: the soak found the gpu-worker's heap growing
 * with every finished job (a composite abort signal kept each job's hooks and replies reachable),
 * so this runs a real orchestrator and a real gpu-worker in this process (real Redis, a generated
 * model) through a mix of jobs (prompts, chats, structured output, cancels while queued and while
 * generating) and checks, once idle, that every per-job holder in both parts and in the model
 * threads is back to 0, that Redis has no more subscriptions than before, and that the process's
 * heap after a full collection did not grow with the jobs.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import type { Redis } from "ioredis";
import { GpuWorker } from "../../gpu-worker/gpu-worker.js";
import type { Orchestrator } from "../../orchestrator/orchestrator.js";
import type { KeyRing } from "../../shared/crypto/index.js";
import { createRedis } from "../../shared/redis/index.js";
import { InProcessOrchestrator } from "../support/in-process-orchestrator.js";
import { tinyModelPath } from "../support/models.js";
import { personSchema } from "../support/person-schema.js";
import { waitFor } from "../support/wait-for.js";

setFlagsFromString("--expose-gc");
const gc = runInNewContext("gc") as () => void;

/** The heap in use after full collections (weak references and finalizers need two). */
async function settledHeapBytes(): Promise<number> {
  for (let i = 0; i < 3; i += 1) {
    gc();
    await new Promise((resolve) => setImmediate(resolve));
  }
  return process.memoryUsage().heapUsed;
}

describe("idle after load: nothing kept per job", () => {
  let stack: InProcessOrchestrator;
  let prefix: string;
  let keyRing: KeyRing;
  let orchestrator: Orchestrator;
  let gpuWorker: GpuWorker;
  let probe: Redis;

  before(async () => {
    stack = await InProcessOrchestrator.start({
      label: "idle",
      env: {
        MODELS: `tiny=${await tinyModelPath()}`,
        MODEL_SEQUENCES: "4",
        CONTEXT_SIZE: "512",
        LLAMA_THREADS: "1",
        LLAMA_GPU: "off",
        // Finished records are kept for `/status` by design: forgotten after 1 s here, so that
        // what is left is what nothing should hold.
        RESULT_RETENTION_MS: "1000",
      },
    });
    ({ prefix, keyRing, orchestrator } = stack);
    const { config, redisUrl, log } = stack;
    gpuWorker = await GpuWorker.start({ config, keyRing, redisTarget: redisUrl, log });
    stack.onClose(() => gpuWorker.close());
    probe = createRedis(redisUrl, "test-probe", log);
    stack.onClose(() => probe.disconnect());
  });

  after(() => stack?.close());

  /** Runs `count` jobs, 8 at a time: a mix of every kind of job and of cancels. */
  async function load(count: number): Promise<Record<string, number>> {
    const ends: Record<string, number> = {};
    let next = 0;
    const one = async (index: number) => {
      const kind = index % 6;
      const sampling = { max_tokens: [4, 16, 32][index % 3], temperature: 0.8 };
      const request =
        kind === 0
          ? { messages: [{ role: "user", content: `tell me ${index}` }], sampling_params: sampling }
          : kind === 1
            ? {
                prompt: "a person:",
                sampling_params: { ...sampling, max_tokens: 64, json_schema: personSchema },
              }
            : { prompt: `Once upon a time ${index}`, sampling_params: sampling };
      const record = await orchestrator.jobs.submit({
        encrypted_input: keyRing.encrypt(JSON.stringify(request)),
      });
      if (kind === 2) await orchestrator.jobs.cancel(record.id);
      if (kind === 3) {
        await record.waitForChunks(10_000);
        await orchestrator.jobs.cancel(record.id);
      }
      await record.waitForEnd(60_000);
      ends[record.status] = (ends[record.status] ?? 0) + 1;
    };
    await Promise.all(
      Array.from({ length: 8 }, async () => {
        while (next < count) {
          next += 1;
          await one(next);
        }
      }),
    );
    return ends;
  }

  /** Waits until no part holds anything for a job, the model threads included (they report every 5 s). */
  async function idle(): Promise<void> {
    await waitFor(
      () =>
        Object.values(orchestrator.jobs.jobsHeld).every((count) => count === 0) &&
        Object.values(gpuWorker.jobsHeld).every((count) => count === 0) &&
        gpuWorker.threadStats.length > 0,
      30_000,
      "both parts to hold no job",
    );
    // The threads' reports are periodic: wait for one from each thread made after the jobs
    // ended (each report arrives as an object of its own).
    const before = new Set(gpuWorker.threadStats);
    await waitFor(
      () => gpuWorker.threadStats.every((stats) => !before.has(stats)),
      30_000,
      "every model thread to report again",
      20,
    );
    // Sweep as the table's own timer will once the last record's retention has run out, rather
    // than sleep through it.
    orchestrator.jobs.table.sweep(performance.now() + stack.config.resultRetentionMs);
    assert.equal(orchestrator.jobs.table.size, 0, "finished records outlived their retention");
  }

  it("holds no job anywhere once idle, and its heap does not grow with the jobs", async () => {
    const subscriptions = async () =>
      (await probe.call("PUBSUB", "CHANNELS", `${prefix}*`)) as string[];
    const channelsBefore = (await subscriptions()).sort();

    const warmUp = await load(120);
    assert.ok((warmUp.COMPLETED ?? 0) > 0 && (warmUp.CANCELLED ?? 0) > 0, JSON.stringify(warmUp));
    await idle();
    const heapAfterWarmUp = await settledHeapBytes();

    const jobs = Number(process.env.IDLE_TEST_JOBS ?? 600);
    const ends = await load(jobs);
    assert.equal((ends.COMPLETED ?? 0) + (ends.CANCELLED ?? 0), jobs, JSON.stringify(ends));
    await idle();

    assert.deepEqual(
      Object.entries(orchestrator.jobs.jobsHeld).filter(([, count]) => count !== 0),
      [],
      "the orchestrator still holds jobs",
    );
    assert.deepEqual(
      Object.entries(gpuWorker.jobsHeld).filter(([, count]) => count !== 0),
      [],
      "the gpu-worker still holds jobs",
    );
    for (const stats of gpuWorker.threadStats) {
      assert.equal(stats.jobs, 0, `model thread ${stats.threadId} still has jobs open`);
      assert.equal(stats.sequencesInUse, 0, `model thread ${stats.threadId} still lends sequences`);
    }
    assert.deepEqual((await subscriptions()).sort(), channelsBefore, "subscriptions changed");

    // The leak of a job's hooks and replies cost ~7 KB a job (4.4 MB over these 600, measured);
    // without it, what a full collection leaves grows ~0.9 MB once after the warm-up, whatever the
    // count (measured with 300, 600 and 1,200 jobs).
    const grownBytes = (await settledHeapBytes()) - heapAfterWarmUp;
    console.log(`# heap after ${jobs} more jobs: ${(grownBytes / 1024).toFixed(0)} KiB grown`);
    assert.ok(
      grownBytes < 2.5 * 1024 * 1024,
      `the heap grew ${(grownBytes / 1024).toFixed(0)} KiB over ${jobs} jobs`,
    );
  });
});
