import { randomInt } from "node:crypto";

/** The largest seed a request may give (`sampling_params.seed`), as vLLM and llama.cpp take it. */
export const maxSeed = 4_294_967_295;

/**
 * A seed for a job that gave none, drawn at admission so the job reports it (the final chunk's
 * `seed`) and a caller can replay the sample. Without one node-llama-cpp seeds with the current
 * second, so requests sent in the same second sampled the same text.
 */
export function drawSeed(): number {
  return randomInt(0, maxSeed + 1);
}
