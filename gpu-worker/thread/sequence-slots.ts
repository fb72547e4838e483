import type { LlamaContext, LlamaContextSequence, Token } from "node-llama-cpp";
import { InternalError } from "../../shared/errors/index.js";

/** A sequence lent to one job, with what it already holds of the job's prompt. */
export interface SequenceLease {
  readonly sequence: LlamaContextSequence;
  /**
   * Prompt tokens the sequence already holds and that will not be evaluated again. At most the
   * prompt's length minus one: the last prompt token is always evaluated, to sample the first one.
   */
  readonly cachedTokens: number;
  /** Hands the sequence back; `keep: false` empties it first (after a failure, or with no cache). */
  release(options?: { keep?: boolean }): Promise<void>;
}

interface Slot {
  readonly sequence: LlamaContextSequence;
  busy: boolean;
  /** When it was last handed back, on a counter: the least recently used slot is evicted first. */
  lastUsed: number;
}

/**
 * The prompt cache of one thread, in the manner of llama-server's `cache_prompt` with slot
 * similarity: the context's sequences live as long as the thread and keep their tokens between
 * jobs. A job gets the free sequence whose tokens share the longest prefix with its prompt (for a
 * chat, the rendered template), else an empty one, else the least recently used one; node-llama-cpp then erases what
 * differs and evaluates only the rest. Without the cache (`reuse: false`) a sequence is emptied
 * when it is handed back, so every job starts cold.
 */
export class SequenceSlots {
  readonly #slots: Slot[];
  readonly #reuse: boolean;
  #clock = 0;

  constructor(context: LlamaContext, options: { reuse: boolean }) {
    this.#reuse = options.reuse;
    this.#slots = Array.from({ length: context.totalSequences }, () => ({
      sequence: context.getSequence(),
      busy: false,
      lastUsed: 0,
    }));
  }

  /** Sequences lent out now. */
  get inUse(): number {
    return this.#slots.filter((slot) => slot.busy).length;
  }

  /** Tokens the sequences hold, lent or not (the prompt cache). */
  get tokensHeld(): number {
    return this.#slots.reduce((sum, slot) => sum + slot.sequence.nextTokenIndex, 0);
  }

  /**
   * Lends the free sequence that best matches `promptTokens` (the tokens the library will
   * evaluate, BOS included). Throws when every sequence is lent: the pool never hands a thread
   * more jobs than it has sequences.
   */
  acquire(promptTokens: readonly Token[]): SequenceLease {
    let best: Candidate | undefined;
    for (const slot of this.#slots) {
      if (slot.busy) continue;
      const candidate = this.#reuse ? measure(slot, promptTokens) : { slot, shared: 0, held: 0 };
      if (best === undefined || isBetter(candidate, best)) best = candidate;
    }
    if (best === undefined) throw new InternalError("no free context sequence in this thread");
    const { slot } = best;
    slot.busy = true;
    let released: Promise<void> | undefined;
    return {
      sequence: slot.sequence,
      cachedTokens: Math.max(0, Math.min(best.shared, promptTokens.length - 1)),
      release: ({ keep = true } = {}) => {
        released ??= (async () => {
          try {
            if (!keep || !this.#reuse) await slot.sequence.clearHistory();
          } finally {
            this.#clock += 1;
            slot.lastUsed = this.#clock;
            slot.busy = false;
          }
        })();
        return released;
      },
    };
  }
}

interface Candidate {
  readonly slot: Slot;
  /** Leading tokens the slot's sequence shares with the prompt. */
  readonly shared: number;
  /** Tokens the slot's sequence holds. */
  readonly held: number;
}

function measure(slot: Slot, tokens: readonly Token[]): Candidate {
  const held = slot.sequence.nextTokenIndex;
  if (held === 0) return { slot, shared: 0, held };
  return {
    slot,
    shared: slot.sequence.compareContextTokens(tokens as Token[]).firstDifferentIndex,
    held,
  };
}

/**
 * A sequence is reused for a prompt when the prompt continues at least half of what it holds (a
 * follow-up, or a new question after a long shared system prompt). One with little in common (the
 * BOS token, a common first word) is not taken for that: it would throw away a long cached prefix
 * to save a few tokens (llama-server's slot similarity works alike).
 */
function reuses(candidate: Candidate): boolean {
  return candidate.held > 0 && candidate.shared * 2 >= candidate.held;
}

/**
 * Whether `a` suits a job better than `b`: a sequence that it reuses, the longest such prefix
 * first; then an empty sequence (nothing to throw away); then the least recently used.
 */
function isBetter(a: Candidate, b: Candidate): boolean {
  const aReuses = reuses(a);
  if (aReuses !== reuses(b)) return aReuses;
  if (aReuses && a.shared !== b.shared) return a.shared > b.shared;
  const aEmpty = a.held === 0;
  if (aEmpty !== (b.held === 0)) return aEmpty;
  return a.slot.lastUsed < b.slot.lastUsed;
}
