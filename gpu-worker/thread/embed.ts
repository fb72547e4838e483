import type { LlamaEmbeddingContext } from "node-llama-cpp";
import { InvalidRequestError, PromptTooLongError } from "../../shared/errors/index.js";
import type { GenerationTask, ThreadResult } from "../../shared/protocol/index.js";
import { promptBytesLimit } from "../../shared/protocol/index.js";
import type { LoadedModel } from "./load-model.js";

type EmbedInput = Extract<GenerationTask["input"], { kind: "embed" }>;

export interface EmbedHooks {
  /** Aborting stops before the next text: the job ends `cancelled`, with no vectors. */
  signal: AbortSignal;
  /** Called once the job starts on the thread's embedding context. */
  onStarted?: () => void;
}

/**
 * Runs an embeddings job: one vector per text, in order, each computed by node-llama-cpp's
 * `LlamaEmbeddingContext.getEmbeddingFor` on the thread's embedding context (its one sequence
 * evaluates one text at a time; jobs of the thread take turns on it). Each text is tokenized once;
 * its token count (BOS/EOS as the library adds them) goes into `promptTokens`. A text the context
 * cannot hold fails the whole job with `PROMPT_TOO_LONG`, naming its index: no vector is cut short.
 */
export async function embed(
  loaded: LoadedModel,
  modelName: string,
  input: EmbedInput,
  hooks: EmbedHooks,
): Promise<ThreadResult> {
  const context = servingContext(loaded, modelName);
  const size = loaded.model.embeddingVectorSize;
  if (input.dimensions !== undefined && input.dimensions !== size) {
    throw new InvalidRequestError(
      `request.dimensions: model "${modelName}" gives vectors of ${size} dimensions; "dimensions" may only be ${size} (vectors are not shortened)`,
    );
  }
  const contextSize = loaded.embeddingContextSize;
  const bytesLimit = promptBytesLimit(contextSize, loaded.maxTokenBytes);
  const inputs = input.texts.map((text, index) => {
    // Before tokenizing: a text of more bytes than any context-full of tokens is refused at once.
    const bytes = Buffer.byteLength(text);
    if (bytesLimit !== undefined && bytes > bytesLimit) {
      throw new PromptTooLongError(
        `request.input[${index}] is ${bytes} bytes; this model's embedding context holds ${contextSize - 1} tokens, which no text over ${bytesLimit} bytes fits`,
      );
    }
    const tokens = loaded.model.tokenize(text, false);
    const length = context.calculateInputLength(tokens);
    // The library refuses an input of the context's size or more (it needs no room to generate).
    if (length >= contextSize) {
      throw new PromptTooLongError(
        `request.input[${index}] is ${length} tokens; this model's embedding context holds ${contextSize - 1}`,
      );
    }
    return { tokens, length };
  });
  if (hooks.signal.aborted) return cancelled;
  hooks.onStarted?.();
  const embeddings: number[][] = [];
  let promptTokens = 0;
  for (const { tokens, length } of inputs) {
    if (hooks.signal.aborted) return cancelled;
    const embedding = await context.getEmbeddingFor(tokens);
    embeddings.push([...embedding.vector]);
    promptTokens += length;
  }
  return { finishReason: "stop", promptTokens, cachedTokens: 0, completionTokens: 0, embeddings };
}

function servingContext(loaded: LoadedModel, modelName: string): LlamaEmbeddingContext {
  if (loaded.embedding === undefined) {
    // Admission refuses these; a task queued before a restart without the setting ends here.
    throw new InvalidRequestError(
      `model "${modelName}" does not serve embeddings: its MODELS entry needs ?embeddings=true`,
    );
  }
  return loaded.embedding;
}

const cancelled: ThreadResult = Object.freeze({
  finishReason: "cancelled",
  promptTokens: 0,
  cachedTokens: 0,
  completionTokens: 0,
});
