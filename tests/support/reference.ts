/**
 * What node-llama-cpp itself generates for a prompt, with nothing of ours in between: the yardstick
 * for end-to-end tests. Greedy sampling, no repeat penalty (the product's defaults), one request at
 * a time (batched greedy output is not bit-identical to single-stream output).
 */
import {
  type ChatHistoryItem,
  getLlama,
  LlamaChat,
  LlamaCompletion,
  LlamaLogLevel,
} from "node-llama-cpp";

export interface ReferenceCase {
  prompt?: string;
  messages?: { role: "system" | "user" | "assistant"; content: string }[];
  /** A chat as node-llama-cpp's own history (function calls with their results, say). */
  history?: ChatHistoryItem[];
  maxTokens: number;
  /**
   * The next case runs on this case's sequence, after what this one left in it, as the prompt
   * cache reuses a sequence (node-llama-cpp keeps the prefix the next prompt shares with it).
   */
  keepSequence?: boolean;
}

/** Generates each case in turn on one loaded model; returns the texts in order. */
export async function referenceTexts(modelPath: string, cases: ReferenceCase[]): Promise<string[]> {
  const llama = await getLlama({ build: "never", gpu: false, logLevel: LlamaLogLevel.error });
  try {
    const model = await llama.loadModel({ modelPath });
    const context = await model.createContext({ contextSize: 2048, sequences: 1, threads: 1 });
    const texts: string[] = [];
    let kept: ReturnType<typeof context.getSequence> | undefined;
    for (const item of cases) {
      const sequence = kept ?? context.getSequence();
      kept = undefined;
      if (item.prompt !== undefined) {
        const completion = new LlamaCompletion({ contextSequence: sequence });
        texts.push(
          await completion.generateCompletion(item.prompt, {
            maxTokens: item.maxTokens,
            temperature: 0,
            repeatPenalty: false,
          }),
        );
        completion.dispose({ disposeSequence: false });
      } else {
        const chat = new LlamaChat({ contextSequence: sequence, autoDisposeSequence: false });
        const history: ChatHistoryItem[] =
          item.history ??
          (item.messages ?? []).map((message) =>
            message.role === "user"
              ? { type: "user", text: message.content }
              : message.role === "system"
                ? { type: "system", text: message.content }
                : { type: "model", response: [message.content] },
          );
        const { response } = await chat.generateResponse(history, {
          maxTokens: item.maxTokens,
          temperature: 0,
          repeatPenalty: false,
        });
        texts.push(response);
        chat.dispose({ disposeSequence: false });
      }
      if (item.keepSequence === true) kept = sequence;
      else sequence.dispose();
    }
    return texts;
  } finally {
    await llama.dispose();
  }
}
