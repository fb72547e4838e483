/**
 * What node-llama-cpp itself gives as embeddings for some texts, with nothing of ours in between:
 * the yardstick of the embeddings tests and benchmark. Also the task and the comparison they use.
 */
import { getLlama, LlamaLogLevel } from "node-llama-cpp";
import type { GenerationTask } from "../../shared/protocol/index.js";

export interface ReferenceEmbeddings {
  /** One vector per text, in order. */
  vectors: number[][];
  /** Tokens node-llama-cpp evaluates for each text (BOS/EOS as it adds them). */
  tokens: number[];
}

/** Embeds each text in turn on one `LlamaEmbeddingContext` of `contextSize` tokens. */
export async function referenceEmbeddings(
  modelPath: string,
  texts: readonly string[],
  contextSize: number,
): Promise<ReferenceEmbeddings> {
  const llama = await getLlama({ build: "never", gpu: false, logLevel: LlamaLogLevel.error });
  try {
    const model = await llama.loadModel({ modelPath });
    const context = await model.createEmbeddingContext({ contextSize, threads: 1 });
    const vectors: number[][] = [];
    const tokens: number[] = [];
    for (const text of texts) {
      vectors.push([...(await context.getEmbeddingFor(text)).vector]);
      tokens.push(context.calculateInputLength(text));
    }
    return { vectors, tokens };
  } finally {
    await llama.dispose();
  }
}

/** The cosine similarity of two vectors of one length. */
export function cosine(a: readonly number[], b: readonly number[]): number {
  if (a.length !== b.length || a.length === 0) return Number.NaN;
  let dot = 0;
  let normA = 0;
  let normB = 0;
  a.forEach((value, index) => {
    const other = b[index] ?? 0;
    dot += value * other;
    normA += value * value;
    normB += other * other;
  });
  return dot / Math.sqrt(normA * normB);
}

/** An embeddings task as the gpu-worker receives it. */
export function embedTask(texts: string[], dimensions?: number): GenerationTask {
  return {
    model: "tiny",
    input: { kind: "embed", texts, ...(dimensions === undefined ? {} : { dimensions }) },
    sampling: {
      maxTokens: 1,
      temperature: 0,
      topP: 1,
      topK: 0,
      minP: 0,
      stop: [],
      repeatPenalty: 1,
      presencePenalty: 0,
      frequencyPenalty: 0,
    },
  };
}
