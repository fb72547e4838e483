import { type ChildProcess, spawn } from "node:child_process";
import net from "node:net";
import { RedisUnavailableError } from "../errors/index.js";
import { redisAnswers } from "./probe-redis.js";

export interface RedisServerProcess {
  readonly url: string;
  /** The server's process id (tests pause it to play a Redis that does not answer). */
  readonly pid: number | undefined;
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

/**
 * Starts a private, memory-only `redis-server` from PATH on a free loopback port, and waits until
 * it answers. Used when no Redis is configured or running. Throws a {@link RedisUnavailableError}
 * saying how to install Redis when there is no `redis-server` to start. `port`: listen there
 * instead (a test that restarts "the same" Redis).
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
    pid: child.pid,
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
