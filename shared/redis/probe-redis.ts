import { Redis } from "ioredis";
import { describeRefusal, type RefusedSetup } from "./redis-refusal.js";

/** Why a probe of Redis failed. */
export interface RedisProbeFailure {
  /** In words for an operator; never the URL or its password. */
  reason: string;
  /**
   * Redis answered, and turned this configuration down for good (a wrong password, a database it
   * does not have): trying again will not help.
   */
  refused: boolean;
}

/** Whether a Redis server answers PING at `url` within `timeoutMs`. */
export async function redisAnswers(url: string, timeoutMs = 1000): Promise<boolean> {
  return (await probeRedis(url, timeoutMs)) === undefined;
}

/**
 * Connects once, as the parts will (password, database, TLS), and sends PING. Resolves `undefined`
 * when Redis answered and accepted the connection's setup, else why not.
 */
export async function probeRedis(
  url: string,
  timeoutMs = 1000,
): Promise<RedisProbeFailure | undefined> {
  const redis = new Redis(url, {
    lazyConnect: true,
    connectTimeout: timeoutMs,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
  });
  // ioredis reports a failed AUTH or SELECT of its connection set-up as an event only (the
  // connection even turns ready after a failed SELECT, and runs on in database 0).
  let lastError: Error | undefined;
  redis.on("error", (error: Error) => {
    lastError = error;
  });
  const setup = { db: redis.options.db ?? 0, password: redis.options.password ?? "" };
  try {
    await redis.connect();
    const answer = await redis.ping();
    if (lastError !== undefined) return describeFailure(lastError, setup);
    return answer === "PONG"
      ? undefined
      : { reason: "it did not answer PING with PONG", refused: false };
  } catch (error) {
    // The event carries the cause (ECONNREFUSED, NOAUTH…); the rejection only says it closed.
    return describeFailure(lastError ?? (error instanceof Error ? error : undefined), setup);
  } finally {
    redis.disconnect();
  }
}

function describeFailure(error: Error | undefined, setup: RefusedSetup): RedisProbeFailure {
  const refusal = error === undefined ? undefined : describeRefusal(error, setup);
  if (refusal !== undefined) {
    return { reason: `Redis refused the connection: ${refusal}`, refused: true };
  }
  return { reason: describeUnreachable(error), refused: false };
}

function describeUnreachable(error: Error | undefined): string {
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  const message = error?.message ?? "";
  if (code === "ECONNREFUSED") return "the connection was refused (nothing listens there)";
  if (code === "ENOTFOUND" || code === "EAI_AGAIN") return "the host name does not resolve";
  if (code === "ETIMEDOUT" || /timed? ?out/i.test(message)) return "the connection timed out";
  if (/SSL|TLS|certificate|wrong version number/i.test(message)) {
    return "the TLS handshake failed (rediss:// needs a TLS port; redis:// a plain one)";
  }
  return code === undefined ? "the connection failed" : `the connection failed (${code})`;
}

/** A Redis URL fit for a log line: the password, if any, is replaced by `***`. */
export function redactRedisUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password !== "") parsed.password = "***";
    return parsed.toString();
  } catch {
    return "(unparsable URL)";
  }
}
