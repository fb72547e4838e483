import type { Piscina } from "piscina";
import { InternalError } from "../../shared/errors/index.js";
import type { ThreadStatsReport } from "../../shared/protocol/index.js";
import { type PrefixDigests, sharedBlocks } from "./prefix-affinity.js";

/** One thread of a model: a piscina pool of its own, so that the pool chooses the thread. */
export interface Lane {
  readonly piscina: Piscina;
  /** Jobs it runs now (at most `sequences`). */
  running: number;
  /** What its sequences hold, as prefix digests, most recently used last. */
  readonly held: PrefixDigests[];
  /** When it last took a job, on the pool's counter. */
  lastUsed: number;
  /** The thread's latest report of its memory and jobs (every few seconds once loaded). */
  stats: ThreadStatsReport | undefined;
}

/**
 * The thread for a job: among those with enough free sequences, the one holding the longest prefix of
 * its input, then the least busy, then the least recently used.
 */
export function chooseLane(
  lanes: readonly Lane[],
  digests: PrefixDigests,
  need: number,
  sequences: number,
): { lane: Lane; matched: number } {
  let best: LaneChoice | undefined;
  for (const lane of lanes) {
    const choice: LaneChoice = {
      lane,
      free: lane.running + need <= sequences,
      shared: 0,
      matched: -1,
    };
    lane.held.forEach((held, index) => {
      const blocks = sharedBlocks(digests, held);
      if (blocks > choice.shared) {
        choice.shared = blocks;
        choice.matched = index;
      }
    });
    if (best === undefined || isBetter(choice, best)) best = choice;
  }
  if (best === undefined) throw new InternalError("the model pool has no threads");
  return best;
}

/** Records what a lane's sequence holds after a job: it replaced what the job matched, if any. */
export function rememberHeld(
  lane: Lane,
  matched: number,
  held: PrefixDigests,
  sequences: number,
): void {
  if (matched >= 0) lane.held.splice(matched, 1);
  else if (lane.held.length >= sequences) lane.held.shift();
  if (held.length > 0) lane.held.push(held);
}

interface LaneChoice {
  lane: Lane;
  free: boolean;
  /** Blocks of the job's input that the lane's best sequence holds. */
  shared: number;
  /** Which of the lane's `held` entries that is; -1 for none. */
  matched: number;
}

function isBetter(a: LaneChoice, b: LaneChoice): boolean {
  if (a.free !== b.free) return a.free;
  if (a.shared !== b.shared) return a.shared > b.shared;
  if (a.lane.running !== b.lane.running) return a.lane.running < b.lane.running;
  return a.lane.lastUsed < b.lane.lastUsed;
}
