import { Redis } from "ioredis";
import { settlesWithin } from "../process/deadline.js";
import { connect } from "./create-redis.js";
import { describeRefusal, type RefusedSetup } from "./redis-refusal.js";
import type { RedisTarget } from "./redis-target.js";
import { certificateErrorOf, describeUntrustedCertificate } from "./untrusted-certificate.js";

/** Why a probe of Redis failed. */
export interface RedisProbeFailure {
  /** In words for an operator; never the URL or its password. */
  reason: string;
  /**
   * Redis answered, and turned this configuration down for good (a wrong password, a database it
   * does not have), or its TLS certificate is not accepted here: trying again will not help.
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
  target: RedisTarget,
  timeoutMs = 1000,
): Promise<RedisProbeFailure | undefined> {
  if (typeof target !== "string") return probeTopology(target, timeoutMs);
  const redis = new Redis(target, {
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

/**
 * A Sentinel-managed primary or a cluster answers: the client finds the primary (or the slots)
 * and PINGs within `timeoutMs`. Its last error says why not.
 */
async function probeTopology(
  target: Exclude<RedisTarget, string>,
  timeoutMs: number,
): Promise<RedisProbeFailure | undefined> {
  const redis = connect(target, { connectionName: "probe", lazyConnect: true });
  let lastError: Error | undefined;
  // A cluster reports a node's refusal (a wrong password) as a "node error", and its own failure
  // to read the slots with the node's error attached.
  const remember = (error: Error & { lastNodeError?: Error }) => {
    const cause = error.lastNodeError ?? error;
    if (lastError?.name !== "ReplyError" || cause.name === "ReplyError") lastError = cause;
  };
  redis.on("error", remember);
  redis.on("node error", remember);
  const setup = {
    db: 0,
    password: target.password ?? "",
    credentials: "REDIS_USERNAME/REDIS_PASSWORD",
  };
  const answered = redis
    .connect()
    .then(() => redis.ping())
    .then(
      (answer) => answer === "PONG",
      (error: unknown) => {
        lastError ??= error instanceof Error ? error : undefined;
        return false;
      },
    );
  try {
    if ((await settlesWithin(answered, timeoutMs)) && (await answered)) return undefined;
    if (target.tls && lastError?.name !== "ReplyError") {
      const first = target.kind === "cluster" ? target.nodes[0] : target.sentinels[0];
      if (first !== undefined) lastError = (await certificateErrorOf(first, 1000)) ?? lastError;
    }
    return describeFailure(lastError, setup, "REDIS_TLS=true needs TLS ports; off, plain ones");
  } finally {
    redis.disconnect();
  }
}

function describeFailure(
  error: Error | undefined,
  setup: RefusedSetup,
  tlsHint = "rediss:// needs a TLS port; redis:// a plain one",
): RedisProbeFailure {
  const untrusted = error === undefined ? undefined : describeUntrustedCertificate(error);
  if (untrusted !== undefined) return { reason: untrusted, refused: true };
  const refusal = error === undefined ? undefined : describeRefusal(error, setup);
  if (refusal !== undefined) {
    return { reason: `Redis refused the connection: ${refusal}`, refused: true };
  }
  return { reason: describeUnreachable(error, tlsHint), refused: false };
}

function describeUnreachable(error: Error | undefined, tlsHint: string): string {
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  const message = error?.message ?? "";
  if (code === "ECONNREFUSED") return "the connection was refused (nothing listens there)";
  if (code === "ENOTFOUND" || code === "EAI_AGAIN") return "the host name does not resolve";
  if (code === "ETIMEDOUT" || /timed? ?out/i.test(message)) return "the connection timed out";
  if (/SSL|TLS|certificate|wrong version number/i.test(message)) {
    return `the TLS handshake failed (${tlsHint})`;
  }
  return code === undefined ? "the connection failed" : `the connection failed (${code})`;
}
