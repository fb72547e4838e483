/**
 * RunPod's official JS client (`runpod-sdk` 1.1.2), unchanged, against the local API: every call
 * it offers, with `baseUrl` `<local API>/v2` and an arbitrary endpoint id, on the real stack.
 * A second model is named to the orchestrator and announced `loading` by no real gpu-worker, so
 * its jobs stay queued: what `runSync`'s fall-back to `/status-sync`, `cancel` and `purgeQueue`
 * act on.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import runpodSdk from "runpod-sdk";
import { RegistryPublisher } from "../../gpu-worker/registry/registry-publisher.js";
import { createLogger } from "../../shared/log.js";
import { RedisNames } from "../../shared/naming.js";
import { isFinalChunk, type OutputChunk, type StreamChunk } from "../../shared/protocol/index.js";
import { createRedis } from "../../shared/redis/index.js";
import { tinyModelPath } from "../support/models.js";
import { TestStack, textOf } from "../support/stack.js";

const apiKey = "sdk-test-api-key";
const request = {
  model: "tiny",
  prompt: "Once upon a time",
  sampling_params: { max_tokens: 24, temperature: 0 },
};

describe("runpod-sdk against the local API", () => {
  let stack: TestStack;
  let registry: RegistryPublisher;
  let registryRedis: ReturnType<typeof createRedis>;
  let endpoint: NonNullable<ReturnType<ReturnType<typeof runpodSdk>["endpoint"]>>;
  const input = (body: unknown) => ({ input: { encrypted_input: stack.encrypt(body) } });
  const ghostRequest = { ...request, model: "ghost" };

  before(async () => {
    const modelPath = await tinyModelPath();
    stack = await TestStack.start({
      models: `tiny=${modelPath},ghost=${modelPath}`,
      gpuWorkerEnv: { MODELS: `tiny=${modelPath}` },
      readyModels: 1,
      env: { API_KEY: apiKey, MODEL_SEQUENCES: "1", CONTEXT_SIZE: "512" },
      label: "sdk",
    });
    const log = createLogger("test", { level: "error", write: () => {} });
    registryRedis = createRedis(stack.redisUrl, "test-registry", log);
    registry = new RegistryPublisher({
      redis: registryRedis,
      names: new RedisNames(stack.prefix),
      workerId: "ghost-gpu-worker",
      ttlMs: 120_000,
      log,
    });
    await registry.announce(["ghost"], "loading");
    const sdk = runpodSdk(apiKey, { baseUrl: `${stack.url}/v2` });
    const made = sdk.endpoint("any-endpoint-id");
    assert.ok(made);
    endpoint = made;
  });

  after(async () => {
    await registry?.close();
    registryRedis?.disconnect();
    await stack?.stop();
  });

  it("health: the job counts and workers", async () => {
    const health = (await endpoint.health()) as unknown as {
      jobs: { completed: number };
      workers: unknown;
    };
    assert.equal(typeof health.jobs.completed, "number");
    assert.ok(health.workers);
  });

  it("run, stream, status and statusSync: one job seen through each", async () => {
    const submitted = (await endpoint.run(input(request))) as unknown as {
      id: string;
      status: string;
    };
    assert.equal(submitted.status, "IN_QUEUE");
    const outputs: OutputChunk[] = [];
    for await (const item of endpoint.stream(submitted.id))
      outputs.push((item as { output: OutputChunk }).output);
    const chunks = outputs as StreamChunk[];
    assert.ok(isFinalChunk(chunks.at(-1) as StreamChunk), "the stream ends with the final chunk");
    const synced = (await endpoint.statusSync(submitted.id, 5000)) as unknown as {
      status: string;
      output: StreamChunk[];
      completed: boolean;
    };
    assert.equal(synced.status, "COMPLETED");
    assert.equal(synced.completed, true);
    const status = (await endpoint.status(submitted.id)) as unknown as {
      status: string;
      output: StreamChunk[];
    };
    assert.equal(status.status, "COMPLETED");
    assert.deepEqual(status.output, synced.output);
    assert.equal(textOf(chunks), textOf(status.output));
    assert.ok(textOf(chunks).length > 0);
  });

  it("runSync: the same greedy text as run", async () => {
    const first = (await endpoint.runSync(input(request), 30_000)) as unknown as {
      status: string;
      output: StreamChunk[];
    };
    const second = (await endpoint.runSync(input(request), 30_000)) as unknown as {
      status: string;
      output: StreamChunk[];
    };
    assert.equal(first.status, "COMPLETED");
    assert.equal(textOf(first.output), textOf(second.output));
  });

  it("runSync of a job still queued after the wait falls back to /status-sync", async () => {
    const started = Date.now();
    const result = (await endpoint.runSync(input(ghostRequest), 2500)) as unknown as {
      id: string;
      status: string;
      completed: boolean;
    };
    assert.equal(result.status, "IN_QUEUE", "status-sync answered with the job's state");
    assert.equal(result.completed, false);
    assert.ok(Date.now() - started >= 2500);
    const cancelled = (await endpoint.cancel(result.id)) as unknown as {
      id: string;
      status: string;
    };
    assert.deepEqual(cancelled, { id: result.id, status: "CANCELLED" });
  });

  it("cancel and purgeQueue act on queued jobs", async () => {
    const queued = (await endpoint.run(input(ghostRequest))) as unknown as {
      id: string;
      status: string;
    };
    assert.equal(queued.status, "IN_QUEUE");
    const purged = (await endpoint.purgeQueue()) as unknown as { removed: number; status: string };
    assert.deepEqual(purged, { removed: 1, status: "completed" });
    const status = (await endpoint.status(queued.id)) as unknown as { status: string };
    assert.equal(status.status, "CANCELLED");
    // The SDK's HTTP library rejects on an error status.
    await assert.rejects(endpoint.cancel("no-such-job"), /status code 404/);
  });

  it("refuses a wrong API key", async () => {
    const wrong = runpodSdk("wrong-key", { baseUrl: `${stack.url}/v2` }).endpoint("x");
    await assert.rejects(async () => wrong?.run(input(request)), /status code 401/);
  });
});
