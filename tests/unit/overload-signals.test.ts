/**
 * The pure parts of overload signalling: which codes get which HTTP status (RunPod-shaped and
 * OpenAI-shaped routes alike), the Retry-After estimate from the recent service time, and the
 * client's reading of a Retry-After header.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { fallbackWaitSeconds, parseRetryAfter } from "../../client/pool-client/busy-retry.js";
import { clampRetryAfter, ServiceTimes } from "../../orchestrator/admission/service-times.js";
import { ErrorCode, ModelUnavailableError, overloadStatusOf } from "../../shared/errors/index.js";
import { openAiError } from "../../shared/openai/index.js";

describe("overload statuses", () => {
  it("maps the three overload codes to 429 and 503, and nothing else", () => {
    assert.equal(overloadStatusOf(ErrorCode.QUEUE_FULL), 429);
    assert.equal(overloadStatusOf(ErrorCode.MODEL_UNAVAILABLE), 503);
    assert.equal(overloadStatusOf(ErrorCode.REDIS_UNAVAILABLE), 503);
    const others = Object.values(ErrorCode).filter(
      (code) => !["QUEUE_FULL", "MODEL_UNAVAILABLE", "REDIS_UNAVAILABLE"].includes(code),
    );
    for (const code of others) assert.equal(overloadStatusOf(code), undefined, code);
  });

  it("gives the OpenAI-shaped answers the same statuses", () => {
    assert.equal(openAiError("QUEUE_FULL", "m").status, 429);
    assert.equal(openAiError("QUEUE_FULL", "m").body.error.type, "rate_limit_error");
    assert.equal(openAiError("MODEL_UNAVAILABLE", "m").status, 503);
    assert.equal(openAiError("MODEL_UNAVAILABLE", "m").body.error.code, "model_unavailable");
    assert.equal(openAiError("REDIS_UNAVAILABLE", "m").status, 503);
    assert.equal(openAiError("UNKNOWN_MODEL", "m").status, 404);
  });

  it("MODEL_UNAVAILABLE carries its wait", () => {
    const error = new ModelUnavailableError("m", { retryAfterSeconds: 10 });
    assert.equal(error.code, "MODEL_UNAVAILABLE");
    assert.equal(error.retryAfterSeconds, 10);
    assert.deepEqual(error.toInfo(), { code: "MODEL_UNAVAILABLE", message: "m" });
  });
});

describe("Retry-After from the recent service time", () => {
  it("is ceil(depth × mean run time / slots), 1 s per job assumed before any completed", () => {
    const times = new ServiceTimes();
    assert.equal(times.retryAfterSeconds("m", 20, 2), 10);
    times.observe("m", 3000);
    assert.equal(times.meanMs("m"), 3000);
    assert.equal(times.retryAfterSeconds("m", 20, 2), 30);
    times.observe("m", 1000);
    // Exponentially weighted, 0.2 for the newest: 3000 + 0.2 × (1000 − 3000).
    assert.equal(times.meanMs("m"), 2600);
    assert.equal(times.retryAfterSeconds("m", 5, 4), Math.ceil((5 * 2.6) / 4));
    assert.equal(times.meanMs("other"), 1000, "each model its own");
  });

  it("is clamped to 1..300 s", () => {
    const times = new ServiceTimes();
    times.observe("m", 5);
    assert.equal(times.retryAfterSeconds("m", 1, 8), 1);
    times.observe("m", Number.NaN);
    assert.equal(times.meanMs("m"), 5, "a bad sample is ignored");
    const slow = new ServiceTimes();
    slow.observe("m", 600_000);
    assert.equal(slow.retryAfterSeconds("m", 100, 1), 300);
    assert.equal(slow.retryAfterSeconds("m", 1, 0), 300, "no slot counted as one");
    assert.equal(clampRetryAfter(0.2), 1);
    assert.equal(clampRetryAfter(10), 10);
    assert.equal(clampRetryAfter(Number.POSITIVE_INFINITY), 300);
  });
});

describe("the client's reading of Retry-After", () => {
  it("takes seconds or an HTTP date, within 0..300", () => {
    assert.equal(parseRetryAfter(null), undefined);
    assert.equal(parseRetryAfter("7"), 7);
    assert.equal(parseRetryAfter(" 12 "), 12);
    assert.equal(parseRetryAfter("100000"), 300);
    assert.equal(parseRetryAfter("soon"), undefined);
    const now = Date.parse("2026-01-01T00:00:00Z");
    assert.equal(parseRetryAfter("Thu, 01 Jan 2026 00:00:30 GMT", now), 30);
    assert.equal(parseRetryAfter("Wed, 31 Dec 2025 23:00:00 GMT", now), 0);
  });

  it("doubles its own wait when the answer named none", () => {
    assert.deepEqual([1, 2, 3, 4].map(fallbackWaitSeconds), [1, 2, 4, 8]);
  });
});
