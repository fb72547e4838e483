import { randomUUID } from "node:crypto";

/**
 * Which gpu-worker runs a job, and the fence that keeps a lost one from writing for it.
 *
 * The owner key (`RedisNames.ownerKey`) holds `<attempt>:<gpu-worker id>`. A gpu-worker that takes
 * a job claims it ({@link claimJobScript}); every reply it writes then goes through
 * {@link fencedReplyScript}, which writes only while the key still names that gpu-worker and
 * attempt. The orchestrator takes a job away from a lost gpu-worker by deleting the key (the job
 * failed) or by setting it to `<next attempt>:` (the job is queued again): from then on the lost
 * gpu-worker's writes are refused, however long it was paused. When the job ends the key says so
 * ({@link endedOwner}). Every write sets the key's expiry in the same atomic step, so no per-job key
 * ever lives without one.
 */

/**
 * The owner key's value once its job ended. A queue entry of an ended job can come back: a
 * primary that fails over to a replica lacking its last writes brings back the entries those
 * writes removed. A gpu-worker that takes such an entry finds this value, its claim is refused and
 * it drops the entry, instead of running an ended job again for nobody.
 */
export const endedOwner = "ended";

/**
 * How long an ended job's owner key says so. A queue entry comes back with a failover seconds
 * after the end it lost, and the orchestrator that ended the job removes it again at the change;
 * the mark is for the gpu-worker that takes such an entry before (or where no orchestrator
 * noticed). One small key per job for this long.
 */
export const endedOwnerTtlMs = 300_000;

/** How long a fence outlives its job's deadline (the job's end replaces it). */
const ownerKeySlackMs = 300_000;

/** The expiry of the fence of a job that times out at `deadline` (epoch ms). */
export function ownerKeyTtlMs(deadline: number, now = Date.now()): number {
  return Math.max(0, deadline - now) + ownerKeySlackMs;
}

/**
 * The id a gpu-worker gives its BullMQ workers: BullMQ's lock token of a job is `<id>:<n>`, so the
 * lock of a job taken but not yet claimed names the gpu-worker that took it ({@link lockHolder}).
 */
export function lockTokenPrefix(workerId: string): string {
  return `${workerId}.${randomUUID()}`;
}

/** The gpu-worker whose BullMQ worker holds a job's lock (its token); `undefined` if unknown. */
export function lockHolder(token: string | null | undefined): string | undefined {
  if (token === null || token === undefined) return undefined;
  const end = token.indexOf(".");
  return end > 0 ? token.slice(0, end) : undefined;
}

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
 * How the scripts publish a reply: `PUBLISH` on the orchestrator's channel (one server, Sentinel),
 * or `SPUBLISH` on the job's own shard channel (Redis Cluster: the message stays on the job's
 * shard instead of crossing the cluster bus to every node; a script may only publish on a shard
 * channel of its own slot, hence a channel per job). See docs/redis-topologies.md#pubsub.
 */
export type PublishCommand = "PUBLISH" | "SPUBLISH";

/**
 * Claims a job for one attempt, unless the job ended, a later attempt exists or another gpu-worker
 * already holds this one; on success also publishes the `started` notice (so a refused claim says nothing).
 * KEYS: owner key. ARGV: attempt, worker id, ttlMs, reply channel, started notice.
 * Returns 1 when claimed, 0 when refused.
 */
export function claimJobScript(publish: PublishCommand): string {
  return `
local current = redis.call('GET', KEYS[1])
local attempt = tonumber(ARGV[1])
if current == '${endedOwner}' then return 0 end
if current then
  local a, w = string.match(current, '^(%d+):(.*)$')
  a = tonumber(a) or 0
  if a > attempt or (a == attempt and w ~= '' and w ~= ARGV[2]) then return 0 end
end
redis.call('SET', KEYS[1], ARGV[1] .. ':' .. ARGV[2], 'PX', ARGV[3])
redis.call('${publish}', ARGV[4], ARGV[5])
return 1
`;
}

/**
 * Appends one reply to the job's stream (with the stream's expiry, in the same step) and
 * publishes it, only while the owner key holds this writer's value. A write sent again after a
 * failover (its first answer lost with the old primary, which had already replicated it) finds
 * its entry there: it publishes again, so the reply reaches a subscriber that moved meanwhile.
 * KEYS: owner key, delta stream. ARGV: owner value, entry id, wire text, stream ttlMs, channel.
 * Returns 1 when written (or already there), 0 when the job is no longer this writer's.
 */
export function fencedReplyScript(publish: PublishCommand): string {
  return `
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
local added = redis.pcall('XADD', KEYS[2], ARGV[2], 'm', ARGV[3])
if type(added) == 'table' and added.err and not string.find(added.err, 'equal or smaller', 1, true) then
  return added
end
redis.call('PEXPIRE', KEYS[2], ARGV[4])
redis.call('${publish}', ARGV[5], ARGV[3])
return 1
`;
}
