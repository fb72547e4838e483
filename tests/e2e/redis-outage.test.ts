/**
 * Redis lost under a running stack: `/run` answers HTTP 503 `REDIS_UNAVAILABLE` with a
 * `Retry-After` within a short bound — at once when the connection is known to be down (the
 * server stopped), within the orchestrator's 3 s wait when it looks up but does not answer (the
 * server paused with SIGSTOP) — instead of holding the caller; and the stack serves again, with no
 * restart, once Redis is back.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { Redis } from "ioredis";
import { RedisNames } from "../../shared/naming.js";
import { type RedisServerProcess, startRedisServer } from "../../shared/redis/index.js";
import { tinyModelPath } from "../support/models.js";
import { TestStack } from "../support/stack.js";
import { waitFor } from "../support/wait-for.js";

/** A generous bound for a loaded CI machine; the refusal used to take 10 s. */
const refusalBoundMs = 5000;

interface Answer {
  http: number;
  retryAfter: string | null;
  ms: number;
  body: { id?: string; status?: string; error?: string };
}

describe("Redis lost under a running stack", { timeout: 300_000 }, () => {
  let redis: RedisServerProcess;
  let port: number;
  let stack: TestStack;

  const run = async (): Promise<Answer> => {
    const started = performance.now();
    const response = await fetch(`${stack.url}/run`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({
        input: {
          encrypted_input: stack.encrypt({
            prompt: "the sun",
            sampling_params: { max_tokens: 8, temperature: 0 },
          }),
        },
      }),
    });
    return {
      http: response.status,
      retryAfter: response.headers.get("retry-after"),
      body: (await response.json()) as Answer["body"],
      ms: performance.now() - started,
    };
  };
  const assertRefused = (answer: Answer) => {
    assert.equal(answer.http, 503, JSON.stringify(answer.body));
    assert.equal(answer.body.status, "FAILED");
    assert.equal(JSON.parse(answer.body.error ?? "{}").code, "REDIS_UNAVAILABLE");
    assert.equal(answer.retryAfter, "2");
    assert.ok(answer.ms < refusalBoundMs, `answered in ${Math.round(answer.ms)} ms`);
  };
  /** Waits until a job is accepted again, then for it to complete. */
  const servesAgain = async () => {
    let answer: Answer | undefined;
    await waitFor(
      async () => {
        answer = await run();
        return answer.http === 200 && answer.body.status !== "FAILED";
      },
      60_000,
      "a job accepted again",
    );
    const id = answer?.body.id ?? "";
    const { status } = await stack.explain(stack.streamAll(id));
    assert.equal(status, "COMPLETED");
  };

  before(async () => {
    // A Redis of this test's own, to stop and start again on the same port.
    redis = await startRedisServer();
    port = Number(new URL(redis.url).port);
    stack = await TestStack.start({
      models: `tiny=${await tinyModelPath()}`,
      redisUrl: redis.url,
      // The gpu-worker re-announces its model within a third of this on the new Redis; its entry
      // outlives the 3 s pause below (the admission behind the pause then reserves a place).
      env: { REGISTRY_TTL_MS: "6000" },
      label: "outage",
    });
    const { status } = await stack.streamAll((await run()).body.id ?? "");
    assert.equal(status, "COMPLETED");
  });

  after(async () => {
    await stack?.stop();
    await redis?.close();
  });

  it("answers 503 at once while Redis is down, and serves again once it is back", async () => {
    await redis.close();
    const refused = await run();
    assertRefused(refused);
    const again = await run();
    assertRefused(again);
    process.stdout.write(
      `# /run with Redis stopped: ${Math.round(refused.ms)} ms, then ${Math.round(again.ms)} ms\n`,
    );
    redis = await startRedisServer({ port });
    await servesAgain();
  });

  it("answers 503 within the bound while Redis does not answer (paused)", async () => {
    assert.ok(redis.pid);
    process.kill(redis.pid, "SIGSTOP");
    let refused: Answer;
    try {
      refused = await run();
    } finally {
      process.kill(redis.pid, "SIGCONT");
    }
    process.stdout.write(`# /run with Redis paused: ${Math.round(refused.ms)} ms\n`);
    assertRefused(refused);
    assert.ok(refused.ms >= 2000, "it waited for Redis before giving up");
    await servesAgain();
    // The place the refused request reserved once Redis answered again was given back, not held
    // for the reservation's 60 s expiry.
    const client = new Redis(redis.url);
    try {
      const reserved = new RedisNames(stack.prefix).queueReservations("tiny");
      await waitFor(async () => (await client.zcard(reserved)) === 0, 10_000, "no place held");
    } finally {
      client.disconnect();
    }
  });
});
