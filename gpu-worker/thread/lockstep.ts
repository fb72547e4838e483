/**
 * Keeps a job's choices in step, token by token: each waits at {@link Lockstep.arrive} until every
 * choice still generating has arrived, then all go on together, in index order, so node-llama-cpp
 * decodes their next tokens in one batch, in the same order, every time. Batched evaluation is not
 * bit-identical across batch shapes and orders (llama.cpp's kernels sum in an order that depends
 * on them): choices that raced each other, or went on in whatever order they happened to arrive,
 * sampled differently from one run to the next with the same seed (measured on the tiny model:
 * one run in three or four drifted within 24 tokens); in step they repeat.
 */
export class Lockstep {
  #active: number;
  #arrived = 0;
  #waiting: { index: number; resolve: () => void }[] = [];

  constructor(participants: number) {
    this.#active = participants;
  }

  /**
   * Waits for the other choices still generating. They go on in the order of their `index`, so
   * their tokens take the same places in each batch every time.
   */
  arrive(index: number): Promise<void> {
    this.#arrived += 1;
    const step = new Promise<void>((resolve) => this.#waiting.push({ index, resolve }));
    this.#release();
    return step;
  }

  /** A choice ended: the others no longer wait for it (call once per choice). */
  leave(): void {
    this.#active -= 1;
    this.#release();
  }

  #release(): void {
    if (this.#arrived < this.#active || this.#arrived === 0) return;
    const waiting = this.#waiting;
    this.#waiting = [];
    this.#arrived = 0;
    waiting.sort((a, b) => a.index - b.index);
    // A microtask later: the last to arrive has then awaited its step too, so every choice goes
    // on in index order (resolved at once, it would go on last, having awaited after the rest).
    queueMicrotask(() => {
      for (const { resolve } of waiting) resolve();
    });
  }
}
