import {
  type ChatWrapper,
  getLlama,
  type Llama,
  type LlamaContext,
  type LlamaEmbeddingContext,
  LlamaLogLevel,
  type LlamaModel,
  resolveChatWrapper,
} from "node-llama-cpp";
import type { ModelLoadOptions, ThreadBackendOptions } from "../../shared/protocol/index.js";
import { takeGrammarLogLine } from "./grammar.js";
import { SequenceSlots } from "./sequence-slots.js";
import { maxTokenBytes } from "./token-bytes.js";

/** The native resources one model thread holds for its whole life. */
export interface LoadedModel {
  readonly llama: Llama;
  readonly model: LlamaModel;
  readonly context: LlamaContext;
  /** The context's sequences, kept between jobs (the prompt cache). */
  readonly slots: SequenceSlots;
  /** How chats are rendered for this model: resolved once, so every job renders alike. */
  readonly chatWrapper: ChatWrapper;
  /** The most text bytes one token stands for (see `token-bytes.ts`); `undefined` if unknown. */
  readonly maxTokenBytes: number | undefined;
  /** With the model's `embeddings` setting: the context embeddings are computed on. */
  readonly embedding: LlamaEmbeddingContext | undefined;
  /** Tokens the embedding context holds (one text at a time); 0 without one. */
  readonly embeddingContextSize: number;
}

/** Without a configured size, a sequence gets the model's training context, capped here. */
const defaultMaxContextSize = 4096;

/**
 * Starts the thread's backend: node-llama-cpp's binding and llama.cpp's backend (on a GPU, its
 * device). Done as the thread starts, before it is given a model. `label()` names the model in
 * llama.cpp's error lines once there is one.
 */
export async function startBackend(
  options: ThreadBackendOptions,
  label: () => string,
): Promise<Llama> {
  const headroom = 1 - options.gpuMemoryUtilization;
  return getLlama({
    build: "never",
    gpu: options.gpu,
    logLevel: LlamaLogLevel.warn,
    // llama.cpp's own messages describe the model and the hardware, not requests.
    logger: (level, message) => {
      // Grammar parse errors quote the request's grammar: kept out of the log.
      if (takeGrammarLogLine(message)) return;
      if (level === LlamaLogLevel.error || level === LlamaLogLevel.fatal) {
        process.stderr.write(`[llama.cpp ${label()}] ${message.trimEnd()}\n`);
      }
    },
    vramPadding: (totalVram) => Math.max(totalVram * headroom, 0),
  });
}

/**
 * Loads the model and creates one context with `sequences` sequences, so the thread can run that
 * many jobs at once (continuous batching). The llama.cpp thread count is always explicit: its
 * default oversubscribes small machines (measured 2,000× slower on 2 cores).
 */
export async function loadModel(llama: Llama, options: ModelLoadOptions): Promise<LoadedModel> {
  if (options.vramCapBytes !== undefined && llama.gpu !== false) {
    // The memory plan's share of the GPU for this thread: GPU layers are fitted under it.
    await llama.setVramCap(options.vramCapBytes);
  }
  const model = await llama.loadModel({
    modelPath: options.modelPath,
    // Offload as many layers as fit while leaving room for the whole context (all sequences'
    // KV cache is as large as one sequence of their summed length).
    gpuLayers:
      options.contextSize === undefined
        ? "auto"
        : {
            fitContext: {
              // An embedding context holds one more sequence's worth.
              contextSize:
                options.contextSize * (options.sequences + (options.embeddings === true ? 1 : 0)),
            },
          },
  });
  const context = await model.createContext({
    contextSize: options.contextSize ?? {
      max: Math.min(model.trainContextSize, defaultMaxContextSize),
    },
    sequences: options.sequences,
    threads: options.llamaThreads,
  });
  const slots = new SequenceSlots(context, { reuse: options.promptCache });
  const embedding =
    options.embeddings === true
      ? await createEmbeddingContext(model, context.contextSize, options.llamaThreads)
      : undefined;
  return {
    llama,
    model,
    context,
    slots,
    chatWrapper: resolveChatWrapper(model),
    maxTokenBytes: maxTokenBytes(model),
    embedding,
    embeddingContextSize: embedding === undefined ? 0 : context.contextSize,
  };
}

/**
 * The embedding context of a model with the `embeddings` setting: a context of its own (llama.cpp
 * computes embeddings only on a context made for them), one sequence of the text context's size,
 * whose batch holds a whole text: a model with non-causal attention must evaluate it in one batch.
 * The memory plan counts it (`embeddingBytes`, estimated alike in `memory/estimate-models.ts`).
 */
function createEmbeddingContext(
  model: LlamaModel,
  contextSize: number,
  llamaThreads: number,
): Promise<LlamaEmbeddingContext> {
  return model.createEmbeddingContext({
    contextSize,
    batchSize: contextSize,
    threads: llamaThreads,
  });
}
