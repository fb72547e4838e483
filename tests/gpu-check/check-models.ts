/**
 * The GPU check's two models, written by the project's own GGUF writer (random weights, seeded):
 * the tiny test model and a "big" one. `1b` is shaped like Llama 3.2 1B (hidden 2048, 16 layers,
 * 16 heads over 4 key/value heads, feed-forward 8192) with a 32,000-token vocabulary: about 1.1
 * billion parameters, q8_0, 1.2 GB. `small` is the same shape scaled down (about 57 million
 * parameters) for dry runs on a CPU, where the 1B model would take minutes per answer.
 */
import { stat } from "node:fs/promises";
import path from "node:path";
import { readGgufFileInfo } from "node-llama-cpp";
import { type TinyLlamaOptions, writeTinyLlamaGguf } from "../../gpu-worker/models/tiny-llama.js";

export type BigModelSize = "1b" | "small";

export const BIG_MODEL_SIZES: readonly BigModelSize[] = ["1b", "small"];

const tinyOptions: TinyLlamaOptions = { name: "gpu-check-tiny", chatTemplate: "chatml" };

const bigOptions: Record<BigModelSize, TinyLlamaOptions> = {
  "1b": {
    name: "gpu-check-1b",
    embeddingLength: 2048,
    blockCount: 16,
    headCount: 16,
    headCountKv: 4,
    feedForwardLength: 8192,
    vocabularySize: 32000,
    tensorType: "q8_0",
    chatTemplate: "chatml",
  },
  small: {
    name: "gpu-check-small",
    embeddingLength: 512,
    blockCount: 8,
    headCount: 8,
    headCountKv: 2,
    feedForwardLength: 1536,
    vocabularySize: 32000,
    tensorType: "q8_0",
    chatTemplate: "chatml",
  },
};

/** One generated model, as the check's report describes it. */
export interface CheckModel {
  /** The name it is served under (`MODELS`). */
  readonly name: "tiny" | "big";
  readonly path: string;
  readonly options: TinyLlamaOptions;
  readonly parameters: number;
  readonly fileBytes: number;
  /** Time the writer took, generation and writing. */
  readonly writeMs: number;
}

/** Writes both models into `directory`; returns them tiny first. */
export async function writeCheckModels(
  directory: string,
  bigSize: BigModelSize,
): Promise<CheckModel[]> {
  const models: CheckModel[] = [];
  for (const [name, options] of [
    ["tiny", tinyOptions],
    ["big", bigOptions[bigSize]],
  ] as const) {
    const filePath = path.join(directory, `${name}.gguf`);
    const start = performance.now();
    await writeTinyLlamaGguf(filePath, options);
    const writeMs = performance.now() - start;
    const info = await readGgufFileInfo(filePath, { logWarnings: false });
    const parameters = (info.fullTensorInfo ?? []).reduce(
      (sum, tensor) => sum + tensor.dimensions.reduce((a: number, b) => a * Number(b), 1),
      0,
    );
    models.push({
      name,
      path: filePath,
      options,
      parameters,
      fileBytes: (await stat(filePath)).size,
      writeMs,
    });
  }
  return models;
}
