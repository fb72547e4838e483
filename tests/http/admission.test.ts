/**
 * Admission against the model registry and the queue limit, with a real orchestrator, real Redis
 * and real HTTP, and registry entries written by the gpu-worker's own publisher (no model
 * loaded): a configured model no live gpu-worker serves is refused at once with HTTP 503
 * `MODEL_UNAVAILABLE` and `Retry-After` — also once its gpu-worker stopped beating — while a model
 * that is not configured stays HTTP 200 `UNKNOWN_MODEL`; a loading model takes jobs, `/health`
 * shows the states and queue depths, and a full queue refuses with HTTP 429 `QUEUE_FULL` and
 * `Retry-After`. Nothing is queued for a refused request.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { InProcessOrchestrator } from "../support/in-process-orchestrator.js";
import { waitFor } from "../support/wait-for.js";

interface Health {
  models: { name: string; state: string; workers: number; queue: { waiting: number } }[];
  workers: { connected: number };
}

describe("admission: registry and queue limit", () => {
  let stack: InProcessOrchestrator;

  const submit = async (request: unknown) => {
    const started = performance.now();
    const response = await fetch(`${stack.base}/run`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({
        input: { encrypted_input: stack.keyRing.encrypt(JSON.stringify(request)) },
      }),
    });
    const body = (await response.json()) as { id: string; status: string; error?: string };
    return {
      ...body,
      ms: performance.now() - started,
      http: response.status,
      retryAfter: response.headers.get("retry-after"),
    };
  };
  const code = (view: { error?: string }) =>
    (JSON.parse(view.error ?? "{}") as { code?: string }).code;
  const health = async () => (await (await fetch(`${stack.base}/health`)).json()) as Health;
  const modelHealth = async (name: string) =>
    (await health()).models.find((model) => model.name === name);
  const queueOf = (model: string) => stack.queue(model);

  before(async () => {
    stack = await InProcessOrchestrator.start({
      label: "admission",
      env: {
        MODELS:
          "tiny=/models/tiny.gguf,other=/models/other.gguf,third=/models/third.gguf?queue_limit=1",
        MAX_QUEUED_JOBS: "2",
        // One job at a time per gpu-worker, so the expected Retry-After is simple to compute.
        MODEL_SEQUENCES: "1",
        // Jobs left queued at the end are cancelled at once on close.
        SHUTDOWN_TIMEOUT_MS: "0",
        PORT: "0",
      },
      api: true,
    });
  });

  after(() => stack?.close());

  it("refuses 503 MODEL_UNAVAILABLE at once for a configured model no gpu-worker serves", async () => {
    const queue = queueOf("other");
    const refused = await submit({ model: "other", prompt: "x" });
    assert.equal(refused.status, "FAILED");
    assert.equal(code(refused), "MODEL_UNAVAILABLE");
    assert.match(String(refused.error), /no gpu-worker serves/);
    assert.equal(refused.http, 503);
    // ceil(REGISTRY_TTL_MS / 1000): the default 10 s.
    assert.equal(refused.retryAfter, "10");
    assert.ok(refused.ms < 2000, `answered in ${Math.round(refused.ms)} ms`);
    assert.deepEqual(await queue.getJobCounts("waiting", "active"), { waiting: 0, active: 0 });
    const other = await modelHealth("other");
    assert.equal(other?.state, "unavailable");
    assert.equal(other?.workers, 0);
  });

  it("keeps a model that is not configured HTTP 200 UNKNOWN_MODEL, without Retry-After", async () => {
    const refused = await submit({ model: "nowhere", prompt: "x" });
    assert.equal(code(refused), "UNKNOWN_MODEL");
    assert.equal(refused.http, 200);
    assert.equal(refused.retryAfter, null);
  });

  it("takes jobs for a loading model, and /health shows loading, then ready", async () => {
    const { publisher: gpuWorker } = stack.publisher("worker-a", 30_000);
    await gpuWorker.announce(["other"], "loading");
    assert.equal((await modelHealth("other"))?.state, "loading");
    const queue = queueOf("other");
    const accepted = await submit({ model: "other", prompt: "x" });
    assert.equal(accepted.status, "IN_QUEUE");
    assert.equal(await queue.getWaitingCount(), 1);
    const loading = await modelHealth("other");
    assert.deepEqual(
      { state: loading?.state, workers: loading?.workers, waiting: loading?.queue.waiting },
      { state: "loading", workers: 1, waiting: 1 },
    );
    await gpuWorker.announce(["other"], "ready");
    assert.equal((await modelHealth("other"))?.state, "ready");
    assert.equal((await health()).workers.connected, 1);
    await fetch(`${stack.base}/cancel/${accepted.id}`, { method: "POST" });
    // A graceful stop withdraws the entry: the model is refused again at once.
    await gpuWorker.close();
    assert.equal((await modelHealth("other"))?.state, "unavailable");
    assert.equal(code(await submit({ model: "other", prompt: "x" })), "MODEL_UNAVAILABLE");
  });

  it("refuses a model once its gpu-worker stopped beating (the entry lapsed)", async () => {
    const { publisher: gpuWorker, redis } = stack.publisher("worker-dies", 1000);
    await gpuWorker.announce(["third"], "ready");
    assert.equal((await modelHealth("third"))?.state, "ready");
    // The process "dies": its connection is gone, nothing is withdrawn, the heartbeat fails.
    redis.disconnect();
    const died = performance.now();
    await waitFor(
      async () => (await modelHealth("third"))?.state === "unavailable",
      10_000,
      "the model to be unavailable",
      100,
    );
    const lapsedMs = performance.now() - died;
    assert.ok(lapsedMs >= 500, `the entry lived out its TTL (lapsed after ${lapsedMs} ms)`);
    const refused = await submit({ model: "third", prompt: "x" });
    assert.equal(code(refused), "MODEL_UNAVAILABLE");
    assert.equal(refused.http, 503);
  });

  it("refuses 429 QUEUE_FULL beyond MAX_QUEUED_JOBS waiting jobs, queueing nothing more", async () => {
    const { publisher: gpuWorker } = stack.publisher("worker-b", 30_000);
    await gpuWorker.announce(["tiny"], "loading");
    const queue = queueOf("tiny");
    const first = await submit({ model: "tiny", prompt: "1" });
    const second = await submit({ model: "tiny", prompt: "2" });
    assert.deepEqual([first.status, second.status], ["IN_QUEUE", "IN_QUEUE"]);
    const third = await submit({ model: "tiny", prompt: "3" });
    assert.equal(third.status, "FAILED");
    assert.equal(code(third), "QUEUE_FULL");
    assert.match(String(third.error), /limit of 2 waiting jobs/);
    assert.equal(third.http, 429);
    // No job of the model completed yet: 1 s each is assumed, 2 waiting on 1 × 1 sequence.
    assert.equal(third.retryAfter, "2");
    assert.equal(await queue.getWaitingCount(), 2);
    assert.equal((await modelHealth("tiny"))?.queue.waiting, 2);
    // Room again once a job leaves the queue.
    await fetch(`${stack.base}/cancel/${first.id}`, { method: "POST" });
    const fourth = await submit({ model: "tiny", prompt: "4" });
    assert.equal(fourth.status, "IN_QUEUE");
  });

  it("a model's queue_limit setting overrides MAX_QUEUED_JOBS", async () => {
    const { publisher: gpuWorker } = stack.publisher("worker-c", 30_000);
    await gpuWorker.announce(["third"], "loading");
    const first = await submit({ model: "third", prompt: "1" });
    assert.equal(first.status, "IN_QUEUE");
    const second = await submit({ model: "third", prompt: "2" });
    assert.equal(code(second), "QUEUE_FULL");
    assert.equal(second.http, 429);
    assert.match(String(second.error), /limit of 1 waiting job/);
    assert.equal(await queueOf("third").getWaitingCount(), 1);
  });
});
