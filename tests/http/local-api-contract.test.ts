/**
 * The local API's own behaviour, with a real orchestrator on real Redis and a real HTTP server,
 * but no gpu-worker: the model is announced in the registry as `loading` (as a starting
 * gpu-worker does), so jobs are accepted and stay queued, which is what cancel, timeout and purge
 * act on.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import type { Queue } from "bullmq";
import type { Orchestrator } from "../../orchestrator/orchestrator.js";
import { FernetKey, type KeyRing } from "../../shared/crypto/index.js";
import { createLogger } from "../../shared/log.js";
import { InProcessOrchestrator } from "../support/in-process-orchestrator.js";
import { waitFor } from "../support/wait-for.js";

const apiKey = "test-api-key-123";

describe("local API contract (no gpu-worker)", () => {
  let stack: InProcessOrchestrator;
  let orchestrator: Orchestrator;
  let base: string;
  let keyRing: KeyRing;
  let queue: Queue;
  const logs: string[] = [];

  const call = async (route: string, init: RequestInit = {}, key: string | null = apiKey) => {
    const headers = new Headers(init.headers);
    if (key !== null) headers.set("authorization", `Bearer ${key}`);
    const response = await fetch(`${base}${route}`, { ...init, headers });
    return { status: response.status, body: (await response.json()) as Record<string, unknown> };
  };
  const postJson = (route: string, body: unknown) =>
    call(route, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: typeof body === "string" ? body : JSON.stringify(body),
    });
  const submit = (request: unknown, extra: Record<string, unknown> = {}) =>
    postJson("/run", {
      input: { encrypted_input: keyRing.encrypt(JSON.stringify(request)) },
      ...extra,
    });

  before(async () => {
    stack = await InProcessOrchestrator.start({
      label: "http",
      env: { MODELS: "tiny=/models/tiny.gguf", API_KEY: apiKey, PORT: "0" },
      announce: { models: ["tiny"], state: "loading" },
      api: { apiKey },
      log: createLogger("orchestrator", { level: "debug", write: (line) => logs.push(line) }),
    });
    ({ orchestrator, base, keyRing } = stack);
    queue = stack.queue("tiny");
  });

  after(() => stack?.close());

  it("requires the API key on every route but /health", async () => {
    assert.equal((await call("/status/x", {}, null)).status, 401);
    assert.equal((await call("/status/x", {}, "wrong")).status, 401);
    assert.equal((await call("/status/x")).status, 404);
    const lower = await fetch(`${base}/status/x`, {
      headers: { authorization: `bearer ${apiKey}` },
    });
    assert.equal(lower.status, 404, "the Bearer scheme is case-insensitive");
    assert.equal((await call("/health", {}, null)).status, 200);
    assert.equal((await call("/health?verbose=1", {}, null)).status, 200);
  });

  it("refuses the plaintext /openai/v1 routes unless ALLOW_PLAINTEXT_OPENAI is on", async () => {
    const waitingBefore = await queue.getWaitingCount();
    for (const prefix of ["", "/v2/any-endpoint"]) {
      const chat = await postJson(`${prefix}/openai/v1/chat/completions`, {
        model: "tiny",
        messages: [{ role: "user", content: "plaintext-marker-5521" }],
      });
      const models = await call(`${prefix}/openai/v1/models`);
      for (const { status, body } of [chat, models]) {
        assert.equal(status, 403);
        const error = body.error as { code: string; type: string; message: string };
        assert.equal(error.code, "openai_plaintext_disabled");
        assert.equal(error.type, "permission_error");
        assert.match(error.message, /ALLOW_PLAINTEXT_OPENAI=true/);
        assert.match(error.message, /npm run proxy/);
      }
    }
    assert.equal(await queue.getWaitingCount(), waitingBefore, "nothing was queued");
    assert.ok(!logs.join("\n").includes("plaintext-marker-5521"));
  });

  it("queues an accepted job and reports the model's queue on /health", async () => {
    const { body } = await submit({ prompt: "hello" });
    assert.equal(body.status, "IN_QUEUE");
    assert.equal(await queue.getWaitingCount(), 1);
    const health = (await call("/health")).body as {
      models: { name: string; queue: { waiting: number } }[];
      jobs: { inQueue: number };
    };
    assert.equal(health.models[0]?.name, "tiny");
    assert.equal(health.models[0]?.queue.waiting, 1);
    assert.equal(health.jobs.inQueue, 1);
    const job = await queue.getJob(String(body.id));
    assert.ok(job);
    assert.ok(!JSON.stringify(job.data).includes("hello"), "job data in Redis is sealed");
    // Cancel with a JSON content type and an empty body, as many clients send it.
    const cancelled = await call(`/cancel/${String(body.id)}`, {
      method: "POST",
      headers: { "content-type": "application/json" },
    });
    assert.equal(cancelled.status, 200);
    assert.equal(cancelled.body.status, "CANCELLED");
    assert.equal(await queue.getWaitingCount(), 0, "the cancelled job left the queue");
  });

  it("enqueues nothing for refused requests", async () => {
    const before = await queue.getJobCounts();
    const refused = await Promise.all([
      postJson("/run", { input: { prompt: "plaintext" } }),
      postJson("/run", { input: { encrypted_input: FernetKey.generate().encrypt("{}") } }),
      postJson("/run", { input: "just a string" }),
      submit({ prompt: "x", model: "other" }),
      submit({ prompt: "x", sampling_params: { top_p: 0 } }),
      submit({ messages: [] }),
    ]);
    for (const { body } of refused) assert.equal(body.status, "FAILED");
    assert.deepEqual(await queue.getJobCounts(), before);
  });

  it("times a job out at policy.executionTimeout and takes it off the queue", async () => {
    const { body } = await submit({ prompt: "slow" }, { policy: { executionTimeout: 1000 } });
    const id = String(body.id);
    assert.equal(await queue.getWaitingCount(), 1);
    const view = (await call(`/stream/${id}?wait=5000`)).body;
    const final = view.status === "TIMED_OUT" ? view : (await call(`/status/${id}`)).body;
    assert.equal(final.status, "TIMED_OUT");
    assert.equal(JSON.parse(String(final.error)).code, "TIMED_OUT");
    // The job ends at once; taking it off the queue follows within a few Redis round trips.
    await waitFor(
      async () => (await queue.getWaitingCount()) === 0,
      5000,
      "the job to leave the queue",
      20,
    );
  });

  it("/purge-queue cancels this orchestrator's waiting jobs", async () => {
    const ids = await Promise.all(
      [1, 2, 3].map(async () => String((await submit({ prompt: "p" })).body.id)),
    );
    assert.equal(await queue.getWaitingCount(), 3);
    const purged = await postJson("/purge-queue", "");
    assert.deepEqual(purged.body, { removed: 3, status: "completed" });
    assert.equal(await queue.getWaitingCount(), 0);
    for (const id of ids) assert.equal((await call(`/status/${id}`)).body.status, "CANCELLED");
  });

  it("answers 400 with a reason for bodies it cannot take, never echoing them", async () => {
    const marker = "SECRET-MARKER-7731";
    const notJson = await postJson("/run", `{"input": "${marker}"`);
    assert.equal(notJson.status, 400);
    assert.match(String(notJson.body.error), /not valid JSON/);
    const noInput = await postJson("/run", { prompt: marker });
    assert.equal(noInput.status, 400);
    const webhook = await postJson("/run", { input: {}, webhook: "http://example.test/hook" });
    assert.equal(webhook.status, 400);
    assert.match(String(webhook.body.error), /webhook/);
    const tooBig = await postJson("/run", {
      input: { encrypted_input: "x".repeat(11 * 1024 * 1024) },
    });
    assert.equal(tooBig.status, 413);
    for (const response of [notJson, noInput, webhook, tooBig]) {
      assert.ok(!JSON.stringify(response.body).includes(marker));
    }
    assert.ok(!logs.some((line) => line.includes(marker)), "no log line holds request text");
  });

  it("refuses nesting past 64 levels in small and large bodies alike; brackets in strings do not count", async () => {
    const deep = `{"input": ${"[".repeat(65)}${"]".repeat(65)}}`;
    // Over 64 KiB, the body is checked while it arrives rather than whole.
    const deepLarge = `{"pad": "${"x".repeat(70 * 1024)}", "input": ${"[".repeat(65)}${"]".repeat(65)}}`;
    for (const body of [deep, deepLarge]) {
      const response = await postJson("/run", body);
      assert.equal(response.status, 400);
      assert.match(String(response.body.error), /deeper than 64/);
    }
    const nested = `{"input": {"encrypted_input": ${JSON.stringify("[".repeat(200))}}, "x": ${"[".repeat(60)}${"]".repeat(60)}}`;
    const fine = await postJson("/run", nested);
    // Past the depth check: refused later, for its token, not for its shape.
    assert.equal(fine.status, 200, JSON.stringify(fine.body));
    assert.equal(JSON.parse(String(fine.body.error)).code, "DECRYPT_FAILED");
  });

  it("answers 415 for a body that is not JSON (text/plain, a form, none named), queueing nothing", async () => {
    const marker = "SECRET-MARKER-4410";
    const before = await queue.getWaitingCount();
    const body = JSON.stringify({
      input: { encrypted_input: keyRing.encrypt(`{"prompt":"${marker}"}`) },
    });
    for (const type of [
      "text/plain",
      "application/x-www-form-urlencoded",
      "application/octet-stream",
    ]) {
      for (const route of ["/run", "/runsync"]) {
        const response = await call(route, {
          method: "POST",
          headers: { "content-type": type },
          body,
        });
        assert.equal(response.status, 415, `${route} with ${type}`);
        assert.match(
          String(response.body.error),
          /must be JSON \(Content-Type: application\/json\)/,
        );
        assert.ok(!JSON.stringify(response.body).includes(marker));
      }
    }
    // fetch names a string body text/plain by itself: the commonest way to forget the header.
    const unnamed = await call("/run", { method: "POST", body });
    assert.equal(unnamed.status, 415);
    assert.equal(await queue.getWaitingCount(), before, "nothing was queued");
  });

  it("caps ?wait instead of refusing it, and refuses a wait that is not a number", async () => {
    const { body } = await submit({ prompt: "w" });
    const id = String(body.id);
    await call(`/cancel/${id}`, { method: "POST" });
    assert.equal((await call(`/stream/${id}?wait=999999999`)).status, 200);
    assert.equal((await call(`/stream/${id}?wait=soon`)).status, 400);
  });

  it("refuses new jobs once draining, and leaves nothing queued for them", async () => {
    await orchestrator.drain();
    const { body } = await submit({ prompt: "late" });
    assert.equal(body.status, "FAILED");
    assert.equal(JSON.parse(String(body.error)).code, "INTERNAL");
    assert.match(String(body.error), /shutting down/);
    assert.equal(await queue.getWaitingCount(), 0);
  });
});
