import { type ChildProcess, spawn } from "node:child_process";
import net from "node:net";
import { Redis } from "ioredis";
import { RedisUnavailableError } from "../errors/index.js";

export interface RedisServerProcess {
  readonly url: string;
  close(): Promise<void>;
}

/** Asks the kernel for a free TCP port on loopback. */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      const port = typeof address === "object" && address !== null ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

/** Whether a Redis server answers PING at `url` within `timeoutMs`. */
export async function redisAnswers(url: string, timeoutMs = 1000): Promise<boolean> {
  return (await probeRedis(url, timeoutMs)) === undefined;
}

/**
 * Connects once and sends PING. Resolves `undefined` when Redis answered, else why it did not, in
 * words for an operator (never the URL or its password).
 */
export async function probeRedis(url: string, timeoutMs = 1000): Promise<string | undefined> {
  const redis = new Redis(url, {
    lazyConnect: true,
    connectTimeout: timeoutMs,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
  });
  let lastError: Error | undefined;
  redis.on("error", (error: Error) => {
    lastError = error;
  });
  try {
    await redis.connect();
    const answer = await redis.ping();
    return answer === "PONG" ? undefined : "it did not answer PING with PONG";
  } catch (error) {
    // The event carries the cause (ECONNREFUSED, NOAUTH…); the rejection only says it closed.
    return describeFailure(lastError ?? (error instanceof Error ? error : undefined));
  } finally {
    redis.disconnect();
  }
}

function describeFailure(error: Error | undefined): string {
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  const message = error?.message ?? "";
  if (code === "ECONNREFUSED") return "the connection was refused (nothing listens there)";
  if (code === "ENOTFOUND" || code === "EAI_AGAIN") return "the host name does not resolve";
  if (code === "ETIMEDOUT" || /timed? ?out/i.test(message)) return "the connection timed out";
  if (/NOAUTH|WRONGPASS|invalid password|AUTH/i.test(message)) {
    return "Redis refused the credentials (check the password in REDIS_URL)";
  }
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

/**
 * Starts a private, memory-only `redis-server` from PATH on a free loopback port, and waits until
 * it answers. Used when no Redis is configured or running. Throws a {@link RedisUnavailableError}
 * saying how to install Redis when there is no `redis-server` to start.
 */
export async function startRedisServer(
  options: { port?: number } = {},
): Promise<RedisServerProcess> {
  // A given port: a restart of a server that was closed (tests of a Redis that comes back empty).
  const port = options.port ?? (await freePort());
  const child: ChildProcess = spawn(
    "redis-server",
    ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
    { stdio: "ignore" },
  );
  // The server must not keep its starter alive; starters close it (or kill it on exit).
  child.unref();
  const url = `redis://127.0.0.1:${port}`;
  const spawnError = new Promise<Error>((resolve) => child.once("error", resolve));
  const deadline = Date.now() + 10_000;
  for (;;) {
    const failed = await Promise.race([
      spawnError,
      new Promise<undefined>((resolve) => setTimeout(() => resolve(undefined), 50)),
    ]);
    if (failed !== undefined) {
      throw new RedisUnavailableError(
        "no Redis is reachable and redis-server could not be started: install Redis " +
          "(Debian/Ubuntu: apt-get install redis-server; macOS: brew install redis) or set REDIS_URL",
        { cause: failed },
      );
    }
    if (child.exitCode !== null) {
      throw new RedisUnavailableError(`redis-server exited with code ${child.exitCode} at start`);
    }
    if (await redisAnswers(url, 500)) break;
    if (Date.now() > deadline) {
      child.kill("SIGKILL");
      throw new RedisUnavailableError("redis-server did not answer within 10 s of starting");
    }
  }
  let closing: Promise<void> | undefined;
  return {
    url,
    close() {
      closing ??= new Promise<void>((resolve) => {
        if (child.exitCode !== null || child.signalCode !== null) return resolve();
        child.once("exit", () => resolve());
        // Unreferenced while it serves; referenced again so the caller's loop waits for its exit.
        child.ref();
        child.kill("SIGTERM");
      });
      return closing;
    },
  };
}
