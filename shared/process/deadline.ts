import { RedisUnavailableError } from "../errors/index.js";

/**
 * Bounds for shutdown steps that wait on something outside the process. A closing part never
 * waits on Redis without one: ioredis with `maxRetriesPerRequest: null` keeps a command of a
 * connection that lost its server in its offline queue for ever, and `disconnect()` on a
 * connection that is reconnecting does not fail those commands (no `close` event comes), so
 * neither waiting nor disconnecting ends the wait. Past the bound the step is given up on: what it
 * awaited runs on unobserved, and the process exits anyway.
 */

/**
 * How long a closing part waits for Redis to answer its last commands (a registry delete, a job's
 * terminal reply, an unsubscribe, BullMQ's own bookkeeping) before it gives up on them: a live
 * Redis answers in milliseconds; a dead one must not hold up the exit.
 */
export const redisCloseGraceMs = 2000;

/**
 * How long a read on the request path waits for Redis before the caller is answered without it: a
 * local API route (HTTP 503 `REDIS_UNAVAILABLE`), a metrics scrape (the Redis gauges left out), a
 * dashboard page (shown without its overview, or with the models already found). A live Redis
 * answers in milliseconds; a caller must not wait out a reconnect.
 */
export const redisAnswerMs = 3000;

/**
 * Resolves `true` once `promise` settles (fulfilled or rejected) within `ms`, else `false` at the
 * deadline; never rejects. The timer is cleared as soon as the promise settles.
 */
export function settlesWithin(promise: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<boolean>((resolve) => {
    timer = setTimeout(() => resolve(false), Math.max(0, ms));
  });
  return Promise.race([
    promise.then(
      () => true,
      () => true,
    ),
    deadline,
  ]).finally(() => clearTimeout(timer));
}

/**
 * `promise`, or a {@link RedisUnavailableError} once `ms` pass without an answer. For Redis
 * commands on the request path: ioredis holds a command through a reconnect (for ever, with
 * `maxRetriesPerRequest: null`), and no caller should wait that long.
 */
export function redisAnswerWithin<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new RedisUnavailableError(`Redis did not answer within ${ms} ms`)),
      ms,
    );
  });
  return Promise.race([promise, deadline]).finally(() => clearTimeout(timer));
}
