/**
 * Which gpu-worker runs a job, and the fence that keeps a lost one from writing for it.
 *
 * The owner key (`RedisNames.ownerKey`) holds `<attempt>:<gpu-worker id>`. A gpu-worker that takes
 * a job claims it ({@link claimJobScript}); every reply it writes then goes through
 * {@link fencedReplyScript}, which writes only while the key still names that gpu-worker and
 * attempt. The orchestrator takes a job away from a lost gpu-worker by deleting the key (the job
 * failed) or by setting it to `<next attempt>:` (the job is queued again): from then on the lost
 * gpu-worker's writes are refused, however long it was paused. Every script sets the key's expiry
 * in the same atomic step that creates it, so no per-job key ever lives without one.
 */

/** The value of an owner key. */
export interface JobOwner {
  attempt: number;
  /** The gpu-worker's registry id; empty while the attempt is fenced but not yet taken. */
  workerId: string;
}

export function ownerValue(owner: JobOwner): string {
  return `${owner.attempt}:${owner.workerId}`;
}

/** Parses an owner key's value; `undefined` for anything else. */
export function parseOwner(value: string | null | undefined): JobOwner | undefined {
  if (value === null || value === undefined) return undefined;
  const match = /^(\d+):(.*)$/.exec(value);
  if (match === null) return undefined;
  return { attempt: Number(match[1]), workerId: match[2] ?? "" };
}

/**
 * Claims a job for one attempt, unless a later attempt exists or another gpu-worker already holds
 * this one; on success also publishes the `started` notice (so a refused claim says nothing).
 * KEYS: owner key. ARGV: attempt, worker id, ttlMs, reply channel, started notice.
 * Returns 1 when claimed, 0 when refused.
 */
export const claimJobScript = `
local current = redis.call('GET', KEYS[1])
local attempt = tonumber(ARGV[1])
if current then
  local a, w = string.match(current, '^(%d+):(.*)$')
  a = tonumber(a) or 0
  if a > attempt or (a == attempt and w ~= '' and w ~= ARGV[2]) then return 0 end
end
redis.call('SET', KEYS[1], ARGV[1] .. ':' .. ARGV[2], 'PX', ARGV[3])
redis.call('PUBLISH', ARGV[4], ARGV[5])
return 1
`;

/**
 * Appends one reply to the job's stream (with the stream's expiry, in the same step) and
 * publishes it, only while the owner key holds this writer's value.
 * KEYS: owner key, delta stream. ARGV: owner value, entry id, wire text, stream ttlMs, channel.
 * Returns 1 when written, 0 when the job is no longer this writer's.
 */
export const fencedReplyScript = `
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('XADD', KEYS[2], ARGV[2], 'm', ARGV[3])
redis.call('PEXPIRE', KEYS[2], ARGV[4])
redis.call('PUBLISH', ARGV[5], ARGV[3])
return 1
`;
