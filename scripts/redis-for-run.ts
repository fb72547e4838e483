import { PoolError } from "../shared/errors/index.js";
import { startRedisServer } from "../shared/redis/index.js";

/** The Redis a run of the tests or the benchmarks uses, and how to let go of it. */
export interface RunRedis {
  readonly url: string;
  /** Whether it is a private server this run started (and `close()` stops). */
  readonly private: boolean;
  close(): Promise<void>;
}

/**
 * `REDIS_URL` when set, so a run never touches a Redis it was not given; else a private,
 * memory-only `redis-server` on a free port. Without either, prints how to get Redis and exits 1.
 */
export async function redisForRun(env: NodeJS.ProcessEnv = process.env): Promise<RunRedis> {
  const given = env.REDIS_URL;
  if (given) return { url: given, private: false, close: async () => {} };
  try {
    const server = await startRedisServer();
    return { url: server.url, private: true, close: () => server.close() };
  } catch (error) {
    process.stderr.write(`${error instanceof PoolError ? error.message : String(error)}\n`);
    process.exit(1);
  }
}
