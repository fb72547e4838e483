import { PoolError, RedisUnavailableError } from "../../shared/errors/index.js";
import { redisAnswerMs, redisAnswerWithin } from "../../shared/process/deadline.js";
import type { RedisClient } from "../../shared/redis/index.js";
import {
  type AdmittedCapacity,
  admitCapacity,
  type CapacityPolicy,
} from "../admission/admit-capacity.js";
import { admitRequest } from "../admission/admit-request.js";
import type { ReplyRelay } from "../relay/reply-relay.js";

/**
 * How long `/run` waits for Redis to admit and take a job (both together) before refusing it
 * `REDIS_UNAVAILABLE`, when the connection looks up but Redis does not answer.
 */
export const enqueueDeadlineMs = redisAnswerMs;
/** ioredis connection states in which the server is known to be gone. */
const redisDownStates: ReadonlySet<string> = new Set(["reconnecting", "close", "end"]);
/** `Retry-After` of `REDIS_UNAVAILABLE`: about one reconnect attempt of the connection. */
const redisRetryAfterSeconds = 2;

/** A request let in, not yet queued. */
export interface AdmittedJob {
  admitted: ReturnType<typeof admitRequest>;
  /** Its place on its queue (when the queue has a limit or capacity checks). */
  place: AdmittedCapacity | undefined;
  /** On a cluster: the subscription of its reply channel, under way. */
  following: Promise<void> | undefined;
  /** The attempt it is queued as (above 1 when an earlier run of its id was fenced off). */
  attempt: number;
}

/**
 * A request's way in, before it is queued: checked (`admitRequest`), refused at once while Redis
 * is known to be down (a command would wait for the reconnect with the caller on hold), its place
 * reserved on its queue within {@link enqueueDeadlineMs} (a place Redis reserves after that is
 * given back), and on a cluster its reply channel subscribed beside the admission (its gpu-worker
 * may reply as soon as it is queued; beside, not after: one round trip fewer), left if refused.
 * A job whose id the caller chose (RunPod's) has what Redis holds of an earlier run of that id
 * cleared beside (`startOver`: see `JobSignals.startOver`). Throws what refuses it.
 */
export async function admitJob(
  input: unknown,
  jobId: string,
  options: {
    admission: Parameters<typeof admitRequest>[1];
    capacity: CapacityPolicy | undefined;
    redis: RedisClient;
    relay: ReplyRelay;
    /** Clears an earlier run of the job's id; resolves the attempt to queue it as. */
    startOver?: (model: string) => Promise<number>;
  },
): Promise<AdmittedJob> {
  const { capacity, redis, relay, startOver } = options;
  const admitted = admitRequest(input, options.admission);
  if (redisDownStates.has(redis.status)) {
    throw new RedisUnavailableError("Redis is not connected; try again shortly");
  }
  let following: Promise<void> | undefined;
  if (relay.channelPerJob) {
    following = relay.follow(jobId);
    following.catch(() => {});
  }
  if (!capacity && startOver === undefined) {
    return { admitted, place: undefined, following, attempt: 1 };
  }
  const admitting = capacity ? admitCapacity(admitted.task, jobId, capacity) : undefined;
  try {
    const [place, attempt] = await redisAnswerWithin(
      Promise.all([admitting, startOver?.(admitted.task.model) ?? 1]),
      enqueueDeadlineMs,
    );
    return { admitted, place, following, attempt };
  } catch (error) {
    // Refused, or past the deadline: a place reserved (or that Redis reserves once it answers
    // again) is given back.
    admitting?.then(
      (late) => late.release(),
      () => {},
    );
    if (following !== undefined) relay.unfollow(jobId);
    throw error;
  }
}

/** When a refused caller should try again, in seconds; `undefined` if trying again won't help. */
export function retryAfterOf(error: unknown): number | undefined {
  if (!(error instanceof PoolError)) return undefined;
  if (error instanceof RedisUnavailableError)
    return error.retryAfterSeconds ?? redisRetryAfterSeconds;
  return error.retryAfterSeconds;
}
