import type { Queue } from "bullmq";
import type { RedisClient } from "../../shared/redis/index.js";

/** At most this many of a queue's latest completed jobs are looked at. */
const cancelledJobsRead = 10_000;

/**
 * Counts, on the Redis server, the completed jobs whose return value says they were cut short.
 * KEYS[1]: the queue's completed set; ARGV[1]: its job-key prefix; ARGV[2]: how many of the
 * latest to look at. A job's key is built from the prefix, as BullMQ's own scripts do.
 */
const countCancelledScript = `
local ids = redis.call('ZREVRANGE', KEYS[1], 0, tonumber(ARGV[2]) - 1)
local cancelled = 0
for _, id in ipairs(ids) do
  local value = redis.call('HGET', ARGV[1] .. id, 'returnvalue')
  if value and string.find(value, '"finishReason":"cancelled"', 1, true) then
    cancelled = cancelled + 1
  end
end
return cancelled
`;

/**
 * How many of a model queue's kept completed jobs were cancelled. A job stopped while it ran
 * (`/cancel`, its timeout, the caller gone, a shutdown) ends normally in BullMQ, as completed:
 * only its return value, the gpu-worker's `JobResult`, says `finishReason: "cancelled"`. (A job
 * cancelled while it waited is taken off its queue and kept nowhere.)
 */
export async function countCancelledJobs(redis: RedisClient, queue: Queue): Promise<number> {
  const count = await redis.eval(
    countCancelledScript,
    1,
    queue.toKey("completed"),
    queue.toKey(""),
    cancelledJobsRead,
  );
  return Number(count);
}
