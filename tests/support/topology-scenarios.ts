/**
 * What the pool must do on any Redis topology (one server, Sentinel, Cluster), written once and
 * run by each topology's test file on a stack of its own: the end-to-end slice, cancellation, the
 * queue limit under concurrent admissions, an orchestrator restart, and the loss of a primary
 * while jobs run.
 */
import assert from "node:assert/strict";
import { FernetKey } from "../../shared/crypto/index.js";
import { createLogger } from "../../shared/log.js";
import { isFinalChunk } from "../../shared/protocol/index.js";
import {
  closeRedis,
  createRedis,
  freePort,
  type RedisTarget,
  scanKeys,
} from "../../shared/redis/index.js";
import { referenceTexts } from "./reference.js";
import { type Ran, runEntryToExit } from "./run-entry.js";
import { type JobView, type TestStack, textOf } from "./stack.js";
import { waitFor, waitForValue } from "./wait-for.js";

const terminal = new Set(["COMPLETED", "FAILED", "CANCELLED", "TIMED_OUT"]);

/** A greedy request for `model` (the stacks here serve `tiny`, and may serve more). */
export const greedy = (prompt: string, maxTokens: number, model = "tiny") => ({
  model,
  prompt,
  sampling_params: { max_tokens: maxTokens, temperature: 0 },
});

/** The error code of a refused `/run` (its body's `error` is JSON `{code, message}`). */
export function codeOf(view: JobView): string | undefined {
  try {
    return (JSON.parse(view.error ?? "{}") as { code?: string }).code;
  } catch {
    return undefined;
  }
}

/**
 * An orchestrator given the topology's settings with a wrong `REDIS_PASSWORD`: exits 2 at start,
 * its message matching `named` (the settings and the cause), and never shows the password.
 */
export async function refusesWrongPassword(
  redisEnv: Record<string, string>,
  modelPath: string,
  named: RegExp,
): Promise<void> {
  const ran = await orchestratorStart(
    { ...redisEnv, REDIS_PASSWORD: "wrong-password" },
    modelPath,
    60_000,
  );
  assert.equal(ran.code, 2, ran.output);
  assert.match(ran.output, named);
  assert.doesNotMatch(ran.output, /wrong-password/);
}

/**
 * An orchestrator started with the topology's settings `redisEnv` that is expected to stop at
 * start: its exit (killed after 30 s), waiting at most `connectTimeoutMs` for Redis.
 */
export async function orchestratorStart(
  redisEnv: Record<string, string>,
  modelPath: string,
  connectTimeoutMs: number,
): Promise<Ran> {
  return runEntryToExit(
    "orchestrator/main.js",
    {
      ...redisEnv,
      REDIS_CONNECT_TIMEOUT_MS: String(connectTimeoutMs),
      ENCRYPTION_KEY: FernetKey.generate().exportKey(),
      MODELS: `tiny=${modelPath}`,
      PORT: String(await freePort()),
      LLAMA_GPU: "off",
    },
    30_000,
  );
}

/** An encrypted request streams the text raw node-llama-cpp generates for it. */
export async function servesLikeTheRawModel(
  stack: TestStack,
  modelPath: string,
  model = "tiny",
): Promise<void> {
  const prompt = "Once upon a time the dog";
  const [expected] = await referenceTexts(modelPath, [{ prompt, maxTokens: 24 }]);
  const job = await stack.run(greedy(prompt, 24, model));
  assert.ok(job.id, JSON.stringify(job));
  const { status, chunks } = await stack.streamAll(job.id);
  assert.equal(status, "COMPLETED");
  assert.equal(textOf(chunks), expected);
  const final = chunks.at(-1);
  assert.ok(final !== undefined && isFinalChunk(final));
  assert.equal(final.usage.completion_tokens, 24);
}

/** A job cancelled mid-stream ends CANCELLED, and the next job completes. */
export async function cancelsMidStream(stack: TestStack): Promise<void> {
  const job = await stack.run(greedy("a long story", 1500));
  let cancelled = false;
  const { status } = await stack.streamAll(job.id, (chunk) => {
    if (!cancelled && !isFinalChunk(chunk)) {
      cancelled = true;
      void stack.post(`/cancel/${job.id}`, {});
    }
  });
  assert.equal(status, "CANCELLED");
  const next = await stack.runsync(greedy("the sun", 8));
  assert.equal(next.status, "COMPLETED");
}

/**
 * With every sequence busy, `requests` concurrent admissions to a queue of `limit` accept exactly
 * `limit` and refuse the rest `QUEUE_FULL`. `sequences`: how many jobs the model runs at once.
 */
export async function holdsTheQueueLimit(
  stack: TestStack,
  options: { limit: number; sequences: number; requests: number },
): Promise<void> {
  const busy = await Promise.all(
    Array.from({ length: options.sequences }, (_, index) =>
      stack.run(greedy(`a long story ${index}`, 1900)),
    ),
  );
  await waitFor(
    async () => {
      const views = await Promise.all(busy.map((job) => stack.get(`/status/${job.id}`)));
      return views.every((view) => (view as JobView).status === "IN_PROGRESS");
    },
    30_000,
    "every sequence to be busy",
    50,
  );
  const answers = await Promise.all(
    Array.from({ length: options.requests }, (_, index) => stack.run(greedy(`q ${index}`, 4))),
  );
  const accepted = answers.filter((answer) => answer.status === "IN_QUEUE");
  const refused = answers.filter((answer) => codeOf(answer) === "QUEUE_FULL");
  try {
    assert.equal(accepted.length, options.limit, JSON.stringify(answers));
    assert.equal(refused.length, options.requests - options.limit);
  } finally {
    for (const job of [...busy, ...accepted]) await stack.post(`/cancel/${job.id}`, {});
  }
}

/** A restarted orchestrator answers for a job the old one finished. */
export async function answersOldJobsAfterRestart(stack: TestStack): Promise<void> {
  const done = await stack.runsync(greedy("the cat", 8));
  assert.equal(done.status, "COMPLETED");
  await stack.restartOrchestrator("SIGKILL");
  const again = (await stack.get(`/status/${done.id}`)) as JobView;
  assert.equal(again.status, "COMPLETED");
  assert.deepEqual(again.output, done.output);
}

/** `/run` with an encrypted request: its HTTP status, `Retry-After`, body and time taken. */
async function answerOfRun(stack: TestStack, request: unknown) {
  const started = performance.now();
  const response = await fetch(`${stack.url}/run`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ input: { encrypted_input: stack.encrypt(request) } }),
  });
  return {
    http: response.status,
    retryAfter: response.headers.get("retry-after"),
    body: (await response.json()) as JobView,
    ms: performance.now() - started,
  };
}

/** Per-job keys under `prefix` that have no expiry (on every primary of a cluster). */
export async function perJobKeysWithoutExpiry(
  target: RedisTarget,
  prefix: string,
): Promise<string[]> {
  const redis = createRedis(target, "test-expiries", createLogger("test", { level: "error" }));
  const perJob =
    /:(job|deltas|cancel|owner):\{[^}]+\}$|:\{model-[^}]+\}:[0-9a-f-]{36}(\.attempt-\d+)?$/;
  try {
    const found: string[] = [];
    for await (const keys of scanKeys(redis, `${prefix}:*`)) {
      for (const key of keys.filter((each) => perJob.test(each))) {
        if ((await redis.pttl(key)) === -1) found.push(key);
      }
    }
    return found;
  } finally {
    await closeRedis(redis);
  }
}

export interface PrimaryLoss {
  /** Kills (SIGKILL) the primary that holds the busy model's queue. */
  kill(): Promise<void>;
  /** Resolves once a replica has been promoted and serves. */
  promoted(): Promise<void>;
  target: RedisTarget;
}

/**
 * Jobs run; the primary holding their queue is killed: within 30 s of the promotion every job is
 * terminal (completed, or failed with a code), a new job completes, and no per-job key is left
 * without an expiry. Returns how long the promotion and the recovery took (ms).
 */
export async function survivesPrimaryLoss(
  stack: TestStack,
  loss: PrimaryLoss,
): Promise<{
  promotionMs: number;
  recoveryMs: number;
  outcomes: string[];
  duringFailover: string;
}> {
  // One after the other, so that none meets the queue limit.
  const jobs: JobView[] = [];
  for (const index of [0, 1, 2]) jobs.push(await stack.run(greedy(`the long road ${index}`, 600)));
  for (const job of jobs) assert.ok(job.id, JSON.stringify(job));
  await waitFor(
    async () => ((await stack.get(`/status/${jobs[0]?.id}`)) as JobView).status === "IN_PROGRESS",
    30_000,
    "a job to run",
    50,
  );
  const killedAt = performance.now();
  await loss.kill();
  // A request during the failover is answered at once: accepted, or 503 REDIS_UNAVAILABLE with a
  // Retry-After; never held.
  const during = await answerOfRun(stack, greedy("during the failover", 4));
  assert.ok(during.ms < 5000, `answered in ${Math.round(during.ms)} ms`);
  if (during.http !== 200) {
    assert.equal(during.http, 503, JSON.stringify(during));
    assert.equal(codeOf(during.body), "REDIS_UNAVAILABLE");
    assert.ok(Number(during.retryAfter) > 0, "a Retry-After");
  }
  await loss.promoted();
  const promotedAt = performance.now();
  const views = await stack.explain(
    waitForValue(
      async () => {
        const all = await Promise.all(
          jobs.map(async (job) => (await stack.get(`/status/${job.id}`)) as JobView),
        );
        return all.every((view) => terminal.has(view.status)) ? all : undefined;
      },
      30_000,
      "every job to be terminal within 30 s of the promotion",
      200,
    ),
  );
  const outcomes = views.map((view) =>
    view.status === "FAILED" ? `FAILED:${codeOf(view) ?? "uncoded"}` : view.status,
  );
  for (const outcome of outcomes) assert.doesNotMatch(outcome, /uncoded/, outcomes.join(","));
  // A new job completes (admission may answer REDIS_UNAVAILABLE while the client catches up).
  const fresh = await stack.explain(
    waitForValue(
      async () => {
        const view = await stack.runsync(greedy("after the failover", 8));
        return view.status === "COMPLETED" ? view : undefined;
      },
      30_000,
      "a new job to complete after the promotion",
      250,
    ),
  );
  assert.equal(fresh.status, "COMPLETED");
  const recoveryMs = performance.now() - promotedAt;
  await waitFor(
    async () => (await perJobKeysWithoutExpiry(loss.target, stack.prefix)).length === 0,
    10_000,
    "every per-job key to carry an expiry",
    200,
  ).catch(async (error: unknown) => {
    const keys = await perJobKeysWithoutExpiry(loss.target, stack.prefix);
    throw new Error(`per-job keys without expiry: ${keys.join(", ")}`, { cause: error });
  });
  return {
    promotionMs: promotedAt - killedAt,
    recoveryMs,
    outcomes,
    duringFailover: during.http === 200 ? "accepted" : `${during.http} ${codeOf(during.body)}`,
  };
}
