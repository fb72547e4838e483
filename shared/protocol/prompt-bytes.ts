import { PromptTooLongError } from "../errors/index.js";
import type { GenerationTask } from "./generation-task.js";

/*
 * A bound on prompts from their size in bytes (see the gpu-worker's `thread/token-bytes.ts`): a
 * text of `b` bytes is at least `b / maxTokenBytes` tokens, so one over `contextSize ×
 * maxTokenBytes` bytes cannot fit a sequence and is refused before anything tokenizes it — at
 * admission, when the model registry has the bound, and in the model thread in any case.
 */

/**
 * UTF-8 bytes of a task's text: the prompt, or the chat messages' contents; for embeddings, the
 * longest text (each is evaluated on its own).
 */
export function promptBytes(input: GenerationTask["input"]): number {
  if (input.kind === "embed") {
    return input.texts.reduce((most, text) => Math.max(most, Buffer.byteLength(text)), 0);
  }
  return input.kind === "prompt"
    ? Buffer.byteLength(input.prompt)
    : input.messages.reduce((sum, message) => sum + Buffer.byteLength(message.content), 0);
}

/**
 * The largest prompt, in bytes, that could fit a sequence of `contextSize` tokens with a token of
 * at most `tokenBytes` bytes; `undefined` when unknown.
 */
export function promptBytesLimit(
  contextSize: number,
  tokenBytes: number | undefined,
): number | undefined {
  return tokenBytes === undefined ? undefined : contextSize * tokenBytes;
}

/** Throws `PROMPT_TOO_LONG` for a prompt of more bytes than `limit` (none when `undefined`). */
export function checkPromptBytes(
  bytes: number,
  limit: number | undefined,
  contextSize: number,
): void {
  if (limit === undefined || bytes <= limit) return;
  throw new PromptTooLongError(promptBytesMessage(bytes, limit, contextSize));
}

function promptBytesMessage(bytes: number, limit: number, contextSize: number): string {
  return `the prompt is ${bytes} bytes; this model's context holds ${contextSize} tokens per request, which no text over ${limit} bytes fits`;
}
