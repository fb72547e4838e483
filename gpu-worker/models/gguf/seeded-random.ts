/**
 * A deterministic pseudo-random generator (mulberry32).
 *
 * Not for anything secret: it exists so the same seed yields the same model file byte for byte,
 * on every machine and Node version (`Math.random` cannot be seeded).
 */
export interface SeededRandom {
  /** A float in [0, 1). */
  next(): number;
  /** A float in [-amplitude, amplitude). */
  uniform(amplitude: number): number;
}

/** Creates a generator; any integer seed works, only its low 32 bits are used. */
export function createSeededRandom(seed: number): SeededRandom {
  let state = seed >>> 0;
  const next = (): number => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return { next, uniform: (amplitude) => (next() * 2 - 1) * amplitude };
}
