/**
 * Overload is signalled, on the real stack: a full queue answers HTTP 429 `QUEUE_FULL` with a
 * `Retry-After` on every route that takes a job (`/run`, `/runsync`, the `/v2/{id}/` spellings,
 * the OpenAI-shaped routes, and through the encrypting proxy); a flood of 300 requests at 32 in
 * flight never takes the queue past its limit (read from Redis all along), and every job it got
 * accepted completes; a configured
 * model with no live gpu-worker answers 503 `MODEL_UNAVAILABLE` with a `Retry-After` — also while
 * its only gpu-worker is stopped (SIGSTOP) past `REGISTRY_TTL_MS` — and is served again once the
 * gpu-worker runs on (SIGCONT).
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { Queue } from "bullmq";
import { OpenAiProxy, PoolClient } from "../../client/index.js";
import { tinyModelPath } from "../support/models.js";
import { TestStack } from "../support/stack.js";
import { waitFor } from "../support/wait-for.js";

const queueLimit = 20;
const registryTtlMs = 3000;
const floodRequests = 300;
const inFlight = 32;
/** Long enough (~1,000 tokens/s here, two at once) to hold both sequences through a step. */
const holdTokens = 4000;
const accepted = new Set(["IN_QUEUE", "IN_PROGRESS", "COMPLETED"]);

interface Answer {
  http: number;
  retryAfter: string | null;
  body: { id?: string; status?: string; error?: string | { code?: string } };
}

describe("overload is signalled", { timeout: 600_000 }, () => {
  let stack: TestStack;
  let queue: Queue;

  const post = async (route: string, body: unknown): Promise<Answer> => {
    const response = await fetch(`${stack.url}${route}`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(body),
    });
    return {
      http: response.status,
      retryAfter: response.headers.get("retry-after"),
      body: (await response.json()) as Answer["body"],
    };
  };
  /** A job for `tiny` unless the request names another model. */
  const job = (request: object) => ({
    input: { encrypted_input: stack.encrypt({ model: "tiny", ...request }) },
  });
  const code = (answer: Answer) => {
    const { error } = answer.body;
    if (typeof error === "string") return (JSON.parse(error) as { code?: string }).code;
    return error?.code;
  };
  const waiting = async () => {
    const counts = await queue.getJobCounts("waiting", "prioritized");
    return (counts.waiting ?? 0) + (counts.prioritized ?? 0);
  };
  const assertRetryAfter = (answer: Answer, what: string) => {
    assert.match(answer.retryAfter ?? "", /^\d+$/, `${what}: Retry-After ${answer.retryAfter}`);
    const seconds = Number(answer.retryAfter);
    assert.ok(seconds >= 1 && seconds <= 300, `${what}: Retry-After ${seconds}`);
  };
  /** Two long jobs on the model's two sequences, running when this resolves. */
  const holdSequences = async (): Promise<string[]> => {
    const ids: string[] = [];
    for (let i = 0; i < 2; i += 1) {
      const held = await post(
        "/run",
        job({ prompt: "the dog", sampling_params: { max_tokens: holdTokens, temperature: 0 } }),
      );
      assert.ok(accepted.has(held.body.status ?? ""), JSON.stringify(held.body));
      ids.push(held.body.id ?? "");
    }
    await waitFor(
      async () => ((await queue.getJobCounts("active")).active ?? 0) === 2,
      30_000,
      "both long jobs running",
    );
    return ids;
  };
  const status = async (id: string) =>
    ((await stack.get(`/status/${id}`)) as { status: string }).status;
  const cancelAll = async (ids: readonly string[]) => {
    for (const id of ids) await post(`/cancel/${id}`, {});
  };

  before(async () => {
    const model = await tinyModelPath();
    stack = await TestStack.start({
      // `ghost` is configured, and no gpu-worker serves it.
      models: `tiny=${model},ghost=${model}`,
      gpuWorkerEnv: { MODELS: `tiny=${model}` },
      readyModels: 1,
      env: {
        MAX_QUEUED_JOBS: String(queueLimit),
        MODEL_SEQUENCES: "2",
        CONTEXT_SIZE: "4096",
        REGISTRY_TTL_MS: String(registryTtlMs),
        ALLOW_PLAINTEXT_OPENAI: "true",
      },
      label: "overload",
    });
    const redis = new URL(stack.redisUrl);
    queue = new Queue(stack.names.modelQueue("tiny"), {
      connection: { host: redis.hostname, port: Number(redis.port) },
      prefix: stack.names.bullPrefix,
    });
  });

  after(async () => {
    await queue?.close();
    await stack?.stop();
  });

  it("answers 429 QUEUE_FULL with Retry-After on every route that takes a job", async () => {
    const holders = await holdSequences();
    const queued: string[] = [];
    for (let i = 0; i < queueLimit; i += 1) {
      const answer = await post("/run", job({ prompt: "x", sampling_params: { max_tokens: 1 } }));
      assert.equal(answer.http, 200);
      assert.equal(answer.body.status, "IN_QUEUE");
      queued.push(answer.body.id ?? "");
    }
    assert.equal(await waiting(), queueLimit);
    const small = job({ prompt: "x", sampling_params: { max_tokens: 1 } });
    for (const route of ["/run", "/runsync", "/v2/any-endpoint/run", "/v2/any-endpoint/runsync"]) {
      const answer = await post(route, small);
      assert.equal(answer.http, 429, `${route}: ${JSON.stringify(answer.body)}`);
      assert.equal(answer.body.status, "FAILED");
      assert.equal(code(answer), "QUEUE_FULL");
      assertRetryAfter(answer, route);
    }
    const openai = await post("/openai/v1/chat/completions", {
      model: "tiny",
      messages: [{ role: "user", content: "hi" }],
    });
    assert.equal(openai.http, 429);
    assert.equal(code(openai), "queue_full");
    assertRetryAfter(openai, "/openai/v1/chat/completions");
    // The encrypting proxy (set up as `npm run proxy` sets it up) hands the 429 to its caller.
    const proxy = await OpenAiProxy.start(
      {
        client: new PoolClient({ baseUrl: stack.url, keyRing: stack.keyRing, busyRetries: 0 }),
        keyRing: stack.keyRing,
      },
      "127.0.0.1",
      0,
    );
    try {
      const response = await fetch(`${proxy.url}/v1/chat/completions`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ model: "tiny", messages: [{ role: "user", content: "hi" }] }),
      });
      const proxied: Answer = {
        http: response.status,
        retryAfter: response.headers.get("retry-after"),
        body: (await response.json()) as Answer["body"],
      };
      assert.equal(proxied.http, 429, JSON.stringify(proxied.body));
      assert.equal(code(proxied), "queue_full");
      assertRetryAfter(proxied, "the proxy");
    } finally {
      await proxy.close();
    }
    assert.equal(await waiting(), queueLimit, "nothing was queued for a refusal");
    await cancelAll([...queued, ...holders]);
  });

  it(`keeps the queue within its limit under ${floodRequests} requests at ${inFlight} in flight`, async () => {
    await waitFor(async () => (await waiting()) === 0, 30_000, "an empty queue");
    const holders = await holdSequences();
    let flooding = true;
    let deepest = 0;
    const watching = (async () => {
      while (flooding) {
        deepest = Math.max(deepest, await waiting());
        await new Promise((resolve) => setTimeout(resolve, 5));
      }
    })();
    const answers: Answer[] = [];
    let next = 0;
    const started = performance.now();
    await Promise.all(
      Array.from({ length: inFlight }, async () => {
        while (next < floodRequests) {
          next += 1;
          answers.push(
            await post(
              "/run",
              job({ prompt: "the sun", sampling_params: { max_tokens: 30, temperature: 0 } }),
            ),
          );
        }
      }),
    );
    const floodMs = performance.now() - started;
    flooding = false;
    await watching;
    await cancelAll(holders);
    const taken = answers.filter((answer) => answer.http === 200);
    const refused = answers.filter((answer) => answer.http !== 200);
    const retryAfters = refused.map((answer) => Number(answer.retryAfter));
    process.stdout.write(
      `# flood: ${taken.length} accepted, ${refused.length} refused in ${Math.round(floodMs)} ms; ` +
        `deepest queue ${deepest} (limit ${queueLimit}); Retry-After ${Math.min(...retryAfters)}..${Math.max(...retryAfters)} s\n`,
    );
    assert.equal(answers.length, floodRequests);
    assert.ok(refused.length > 0, "the flood was refused in part");
    for (const answer of refused) {
      assert.equal(answer.http, 429, JSON.stringify(answer.body));
      assert.equal(code(answer), "QUEUE_FULL");
      assertRetryAfter(answer, "/run");
    }
    for (const answer of taken) assert.ok(accepted.has(answer.body.status ?? ""));
    assert.ok(deepest <= queueLimit, `the queue held ${deepest} waiting jobs`);
    // Every accepted job completes.
    for (const answer of taken) {
      const id = answer.body.id ?? "";
      await waitFor(async () => (await status(id)) !== "IN_QUEUE", 120_000, `job ${id} starting`);
      await waitFor(
        async () => !["IN_QUEUE", "IN_PROGRESS"].includes(await status(id)),
        120_000,
        `job ${id} ending`,
      );
      assert.equal(await status(id), "COMPLETED");
    }
  });

  it("answers 503 MODEL_UNAVAILABLE with Retry-After for a configured model nobody serves", async () => {
    const ghost = job({ model: "ghost", prompt: "x" });
    for (const route of ["/run", "/runsync", "/v2/any-endpoint/run"]) {
      const answer = await post(route, ghost);
      assert.equal(answer.http, 503, `${route}: ${JSON.stringify(answer.body)}`);
      assert.equal(answer.body.status, "FAILED");
      assert.equal(code(answer), "MODEL_UNAVAILABLE");
      // ceil(REGISTRY_TTL_MS / 1000)
      assert.equal(answer.retryAfter, String(Math.ceil(registryTtlMs / 1000)));
    }
    const openai = await post("/openai/v1/completions", { model: "ghost", prompt: "x" });
    assert.equal(openai.http, 503);
    assert.equal(code(openai), "model_unavailable");
    assert.equal(openai.retryAfter, String(Math.ceil(registryTtlMs / 1000)));
    // A model that is not configured at all stays a plain refusal.
    const unknown = await post("/run", job({ model: "nowhere", prompt: "x" }));
    assert.equal(unknown.http, 200);
    assert.equal(code(unknown), "UNKNOWN_MODEL");
    assert.equal(unknown.retryAfter, null);
  });

  it("refuses MODEL_UNAVAILABLE while the gpu-worker is stopped, and serves again after", async () => {
    const [gpuWorker] = stack.gpuWorkers;
    assert.ok(gpuWorker?.pid);
    const request = job({ prompt: "the sun", sampling_params: { max_tokens: 8, temperature: 0 } });
    gpuWorker.kill("SIGSTOP");
    try {
      const stoppedAt = performance.now();
      let refused: Answer | undefined;
      await waitFor(
        async () => {
          const answer = await post("/run", request);
          if (answer.http === 200) await post(`/cancel/${answer.body.id}`, {});
          refused = answer.http === 200 ? undefined : answer;
          return refused !== undefined;
        },
        registryTtlMs + 30_000,
        "the stopped gpu-worker's entry to lapse",
      );
      const lapsedMs = performance.now() - stoppedAt;
      assert.ok(refused);
      assert.equal(refused.http, 503, JSON.stringify(refused.body));
      assert.equal(code(refused), "MODEL_UNAVAILABLE");
      assert.equal(refused.retryAfter, String(Math.ceil(registryTtlMs / 1000)));
      assert.ok(lapsedMs >= registryTtlMs / 2, `refused ${Math.round(lapsedMs)} ms after SIGSTOP`);
    } finally {
      gpuWorker.kill("SIGCONT");
    }
    let served: Answer | undefined;
    await waitFor(
      async () => {
        served = await post("/run", request);
        return served.http === 200;
      },
      30_000,
      "the model served again after SIGCONT",
    );
    const id = served?.body.id ?? "";
    await waitFor(
      async () => !["IN_QUEUE", "IN_PROGRESS"].includes(await status(id)),
      60_000,
      "the job after SIGCONT ending",
    );
    assert.equal(await status(id), "COMPLETED");
  });
});
