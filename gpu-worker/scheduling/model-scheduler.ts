import { messageOf } from "../../shared/errors/index.js";
import type { Logger } from "../../shared/log.js";
import type { RedisNames } from "../../shared/naming.js";
import type { RedisClient } from "../../shared/redis/index.js";
import { LoadClaim } from "./load-claim.js";
import type { HostedModel, ModelHost } from "./model-host.js";
import { type ModelDemand, readPoolDemand, type WorkerRoom } from "./pool-demand.js";

export interface ModelSchedulerOptions {
  host: ModelHost;
  redis: RedisClient;
  names: RedisNames;
  /** This gpu-worker's registry id: the holder of the load claims it takes. */
  workerId: string;
  /** `KEEP_ALIVE`: unload a model idle this long (0: as soon as idle; -1: never). */
  keepAliveMs: number;
  /** `MAX_SWAP_WAIT_MS`: how long a model's oldest job waits before a busy model makes room. */
  maxSwapWaitMs: number;
  /** How often it looks at the pool's demand (load requests also wake it at once). */
  tickMs?: number;
  log: Logger;
}

/** What making room for a model takes on this gpu-worker. */
interface Room {
  /** Models to unload first (idle, or busy with nothing running once a swap is due). */
  unload: HostedModel[];
  /** Models that must stop taking jobs and let their running ones end before room is there. */
  drain: HostedModel[];
  /** `pressure` (idle models make room) or `swap` (a busy one does: the wait is too long). */
  reason: "pressure" | "swap";
}

/** A load a gpu-worker could do only by unloading others waits this long for one that needs not. */
const minEvictionDelayMs = 150;
const maxEvictionDelayMs = 1000;
/** A model served elsewhere is loaded here too once this many jobs have waited this long. */
const joinQueueJobsPerSlot = 2;
const joinAfterMs = 5000;

/**
 * Decides, for one gpu-worker, which models of its catalogue it holds (see {@link ModelHost}):
 *
 * - **At start** it loads its models in `MODELS` order while they fit the budget, except those
 *   marked `preload=false`; the others are `cold` in the registry: it can load them.
 * - **On demand**: a model with waiting jobs that no live gpu-worker has loaded or is loading is
 *   loaded by one gpu-worker that can fit it, the one that claims its load in Redis first. A
 *   gpu-worker that must unload models to make room waits a little before it claims (more the more
 *   those models are used), so one with free room, or with the least used models to give up, wins.
 * - **More gpu-workers join** a model served elsewhere when its queue holds more than two jobs per
 *   slot this gpu-worker would add, for 5 s, and it fits here without unloading anything.
 * - **Idle models are unloaded** after `KEEP_ALIVE` (no job running here, none waiting); pinned
 *   models never are. **Under pressure** the least recently used idle models go first. A model
 *   whose queue is busy makes room only once the waiting model's oldest job has waited
 *   `MAX_SWAP_WAIT_MS` (so no model starves and the pool does not thrash); if it has jobs running,
 *   it stops taking new ones and is unloaded when they end, never under them.
 *
 * One change (a load, or the unloads that make room for it) at a time.
 */
export class ModelScheduler {
  readonly #options: ModelSchedulerOptions;
  readonly #host: ModelHost;
  /** When each loaded model became idle here (no job running, none waiting). */
  readonly #idleSince = new Map<string, number>();
  /** When this gpu-worker first saw a model's demand it could meet only by unloading others. */
  readonly #evictionSeenAt = new Map<string, number>();
  /** When a model served elsewhere first had a queue long enough for this one to join. */
  readonly #longQueueSince = new Map<string, number>();
  /** The live gpu-workers' room, as the last read found it. */
  #workers: ReadonlyMap<string, WorkerRoom> = new Map();
  #changing: Promise<void> | undefined;
  #timer: NodeJS.Timeout | undefined;
  #ticking = false;
  #again = false;
  #closed = false;

  constructor(options: ModelSchedulerOptions) {
    this.#options = options;
    this.#host = options.host;
  }

  /**
   * Loads the preloaded models in catalogue order while they fit (each announced `loading` until
   * then), marks the others `cold`, then starts looking at the pool's demand. Rejects if a
   * preloaded model fails to load.
   */
  async start(): Promise<void> {
    const { host, log } = this.#options;
    const preloading = (async () => {
      for (const { model, planned } of host.catalogue) {
        if (this.#closed) return;
        if (model.settings.preload && planned.totalBytes <= host.freeBytes) {
          await host.load(model.name, "preload");
          continue;
        }
        await host.markCold(model.name);
        if (model.settings.preload) {
          log.info("not preloaded: the budget is taken by the models before it", {
            model: model.name,
            bytes: planned.totalBytes,
            freeBytes: host.freeBytes,
          });
        }
      }
    })();
    // Load requests that come meanwhile wait: the preloads are the first change.
    this.#changing = preloading.then(() => undefined);
    try {
      await preloading;
    } finally {
      this.#changing = undefined;
    }
    this.#timer = setInterval(() => this.wake(), this.#options.tickMs ?? 500);
    this.#timer.unref();
    this.wake();
  }

  /** Looks at the demand now (a load request came in, a job ended). */
  wake(): void {
    if (this.#closed) return;
    if (this.#ticking) {
      this.#again = true;
      return;
    }
    void this.#tick();
  }

  async #tick(): Promise<void> {
    this.#ticking = true;
    try {
      do {
        this.#again = false;
        if (this.#changing !== undefined) return;
        await this.#decide();
      } while (this.#again && !this.#closed);
    } catch (error) {
      this.#options.log.warn("could not read the pool's demand for models", {
        error: messageOf(error),
      });
    } finally {
      this.#ticking = false;
    }
  }

  async #decide(): Promise<void> {
    const { host, redis, names } = this.#options;
    const models = host.catalogue.map(({ model }) => model.name);
    const { demand, workers } = await readPoolDemand(redis, names, models);
    if (this.#closed) return;
    this.#workers = workers;
    const now = Date.now();
    this.#unloadIdle(demand, now);
    if (this.#changing !== undefined) return;
    // Those that wait longest first.
    const wanted = [...demand]
      .filter(([name, asked]) => asked.waiting > 0 && host.get(name) === undefined)
      .sort(([, a], [, b]) => b.oldestWaitMs - a.oldestWaitMs);
    for (const [name, asked] of wanted) {
      if (await this.#considerLoad(name, asked, now)) return;
    }
    // Nobody needs the room a draining model was giving up: it takes jobs again.
    const roomWanted = wanted.some(
      ([, asked]) => asked.serving === 0 && !(asked.claimedBy && asked.claimantAlive),
    );
    for (const hosted of host.hosted) {
      if (hosted.draining && !roomWanted) await host.resumeTaking(hosted.name);
    }
  }

  /** Unloads models idle past `KEEP_ALIVE`, and drained ones whose running jobs ended. */
  #unloadIdle(demand: ReadonlyMap<string, ModelDemand>, now: number): void {
    const { host, keepAliveMs } = this.#options;
    for (const hosted of host.hosted) {
      if (hosted.readyAt === undefined) continue;
      const idle = host.running(hosted.name) === 0 && (demand.get(hosted.name)?.waiting ?? 0) === 0;
      if (hosted.draining) {
        if (host.running(hosted.name) === 0) this.#change(() => host.unload(hosted.name, "swap"));
        continue;
      }
      if (!idle) {
        this.#idleSince.delete(hosted.name);
        continue;
      }
      const since = this.#idleSince.get(hosted.name) ?? now;
      this.#idleSince.set(hosted.name, since);
      if (hosted.pin || keepAliveMs < 0 || now - since < keepAliveMs) continue;
      this.#idleSince.delete(hosted.name);
      this.#change(() => host.unload(hosted.name, "idle"));
      return;
    }
  }

  /** Loads `name` here if this gpu-worker should; whether it started a change. */
  async #considerLoad(name: string, asked: ModelDemand, now: number): Promise<boolean> {
    const { host, redis, names, workerId, log } = this.#options;
    const entry = host.entry(name);
    if (entry === undefined) return false;
    // Claimed by a live gpu-worker: it loads it. One that died while loading leaves a claim
    // whose registry entry lapsed: taken over.
    if (asked.claimedBy !== undefined && asked.claimantAlive) return false;
    let reason: "demand" | "join" = "demand";
    if (asked.serving > 0) {
      // Served elsewhere: join only for a long queue, and only with free room.
      const slots = entry.model.settings.threads * entry.model.settings.sequences;
      const long = asked.waiting > joinQueueJobsPerSlot * slots;
      if (!long || entry.planned.totalBytes > host.freeBytes) {
        this.#longQueueSince.delete(name);
        return false;
      }
      const since = this.#longQueueSince.get(name) ?? now;
      this.#longQueueSince.set(name, since);
      if (now - since < joinAfterMs) return false;
      reason = "join";
    }
    const room = this.#room(entry.planned.totalBytes, asked);
    if (room === undefined) return false;
    if ((room.unload.length > 0 || room.drain.length > 0) && this.#roomElsewhere(name)) {
      // A gpu-worker with free room (or with less used models to give up) goes first.
      const seen = this.#evictionSeenAt.get(name) ?? now;
      this.#evictionSeenAt.set(name, seen);
      if (now - seen < evictionDelayMs([...room.unload, ...room.drain], now)) return false;
    }
    if (room.drain.length > 0) {
      // Room is there only once their running jobs end: they take no new ones meanwhile.
      for (const hosted of room.drain) await host.stopTaking(hosted.name);
      return false;
    }
    const claim = await LoadClaim.take(redis, names, name, workerId, asked.claimedBy);
    if (claim === undefined) return false;
    this.#evictionSeenAt.delete(name);
    this.#longQueueSince.delete(name);
    log.info("taking a model's load", {
      model: name,
      reason,
      waiting: asked.waiting,
      oldestWaitMs: asked.oldestWaitMs,
      unloading: room.unload.map((hosted) => hosted.name).join(","),
    });
    this.#change(async () => {
      try {
        for (const hosted of room.unload) await host.unload(hosted.name, room.reason);
        await host.load(name, reason);
      } finally {
        await claim.release();
      }
    });
    return true;
  }

  /**
   * Whether another live gpu-worker may load `name` with less to give up: one that has it in its
   * catalogue and the room, or models of its own it could unload. Without one, this gpu-worker
   * claims the load at once.
   */
  #roomElsewhere(name: string): boolean {
    for (const [id, room] of this.#workers) {
      if (id === this.#options.workerId || room.models[name] === undefined) continue;
      return true;
    }
    return false;
  }

  /** What making room for `bytes` takes here now; `undefined` when it cannot be made. */
  #room(bytes: number, asked: ModelDemand): Room | undefined {
    const { host, maxSwapWaitMs } = this.#options;
    let free = host.freeBytes;
    if (bytes <= free) return { unload: [], drain: [], reason: "pressure" };
    const candidates = host.hosted.filter((hosted) => !hosted.pin && hosted.readyAt !== undefined);
    // Idle models first, the least recently used first.
    const idle = candidates
      .filter((hosted) => host.running(hosted.name) === 0 && this.#idleSince.has(hosted.name))
      .sort((a, b) => a.lastUsedAt - b.lastUsedAt);
    const unload: HostedModel[] = [];
    for (const hosted of idle) {
      if (free >= bytes) break;
      unload.push(hosted);
      free += hosted.bytes;
    }
    if (free >= bytes) return { unload, drain: [], reason: "pressure" };
    if (asked.oldestWaitMs < maxSwapWaitMs) return undefined;
    // A swap is due: busy models make room, those with nothing running first, then the least
    // recently used.
    const busy = candidates
      .filter((hosted) => !unload.includes(hosted))
      .sort(
        (a, b) =>
          Number(host.running(a.name) > 0) - Number(host.running(b.name) > 0) ||
          a.lastUsedAt - b.lastUsedAt,
      );
    const drain: HostedModel[] = [];
    for (const hosted of busy) {
      if (free >= bytes) break;
      if (host.running(hosted.name) === 0) unload.push(hosted);
      else drain.push(hosted);
      free += hosted.bytes;
    }
    return free >= bytes ? { unload, drain, reason: "swap" } : undefined;
  }

  /** Runs one change at a time; the next tick comes once it is done. */
  #change(change: () => Promise<unknown>): void {
    if (this.#changing !== undefined) return;
    this.#changing = change()
      .then(
        () => undefined,
        (error: unknown) =>
          this.#options.log.warn("a model change failed", { error: messageOf(error) }),
      )
      .finally(() => {
        this.#changing = undefined;
        this.wake();
      });
  }

  /** Stops deciding; resolves once a change under way is done (a load finishes). */
  async close(): Promise<void> {
    this.#closed = true;
    clearInterval(this.#timer);
    await this.#changing;
  }
}

/**
 * How long a gpu-worker that must unload models waits before it claims a load: the more those
 * models were used (jobs a minute since they were loaded), the longer, so that the pool gives up
 * the least used ones.
 */
function evictionDelayMs(models: readonly HostedModel[], now: number): number {
  const perMinute = models.reduce((sum, hosted) => {
    const minutes = Math.max(1, (now - hosted.loadStartedAt) / 60_000);
    return sum + hosted.jobsStarted / minutes;
  }, 0);
  return Math.min(maxEvictionDelayMs, minEvictionDelayMs + 10 * perMinute);
}
