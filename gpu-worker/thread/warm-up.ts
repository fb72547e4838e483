import type { Token } from "node-llama-cpp";
import type { LoadedModel } from "./load-model.js";

/**
 * Runs the model once before the thread reports it loaded: one token (BOS, else EOS, else token 0)
 * evaluated on one of the context's sequences and one token sampled greedily, so that what a first
 * evaluation sets up (on a GPU: the CUDA kernels' loading, and their JIT compilation from PTX on a
 * GPU the backend has no machine code for; cuBLAS and the compute buffers) is paid before the
 * model is announced ready, not by the first job. The sequence is emptied afterwards, so the
 * prompt cache starts empty. A model with the `embeddings` setting embeds that token too, on its
 * embedding context. Returns the time it took, in ms.
 *
 * It covers the kernels of generating one token; a long prompt is evaluated in batches with
 * kernels of its own, which CUDA loads on their first use (the GPU check's "first request after
 * load" measures what is left).
 */
export async function warmUp(loaded: LoadedModel): Promise<number> {
  const started = performance.now();
  const { tokens } = loaded.model;
  const token = tokens.bos ?? tokens.eos ?? (0 as Token);
  const lease = loaded.slots.acquire([token]);
  try {
    const evaluation = lease.sequence.evaluate([token], { temperature: 0 });
    try {
      await evaluation.next();
    } finally {
      await evaluation.return();
    }
  } finally {
    await lease.release({ keep: false });
  }
  // The embedding context's first evaluation too (its graph pools the output): not the first job's.
  await loaded.embedding?.getEmbeddingFor([token]);
  return performance.now() - started;
}
