/**
 * Keeps a job's choices in step, token by token: each waits at {@link Lockstep.arrive} until every
 * choice still generating has arrived, then all go on at once, so node-llama-cpp decodes their
 * next tokens in one batch every time. Batched evaluation is not bit-identical across batch
 * shapes (on a CPU, llama.cpp's matrix kernels sum in an order that depends on the batch), so
 * choices that raced each other sampled differently from one run to the next with the same
 * seed; in step, the batches of a run are the same every time, and so is the text.
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
    for (const { resolve } of waiting) resolve();
  }
}
