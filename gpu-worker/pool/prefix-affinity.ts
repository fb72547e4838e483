import { createHash } from "node:crypto";
import type { GenerationTask } from "../../shared/protocol/index.js";

/** Characters per block: prefixes are compared block by block. */
const blockChars = 64;

/**
 * A job's text as a chain of block digests: digest `i` covers the text's first `(i + 1) × 64`
 * characters. Two texts that share a prefix share the digests of its whole blocks, so the number of
 * equal leading digests measures the shared prefix, without keeping any text.
 */
export type PrefixDigests = readonly string[];

/** The digests of a job's input: its prompt, or its messages in order with their roles. */
export function inputDigests(task: GenerationTask): PrefixDigests {
  return digests(inputText(task));
}

/**
 * The digests of what a sequence holds once the job ends: its input followed by its output, so a
 * follow-up that repeats both (the next turn of a chat) matches all of it.
 */
export function heldDigests(task: GenerationTask, output: string): PrefixDigests {
  const text = inputText(task);
  return digests(
    task.input.kind === "prompt" ? text + output : `${text}\u0000assistant\u0001${output}`,
  );
}

/** Leading digests `a` and `b` share. */
export function sharedBlocks(a: PrefixDigests, b: PrefixDigests): number {
  const length = Math.min(a.length, b.length);
  let index = 0;
  while (index < length && a[index] === b[index]) index += 1;
  return index;
}

function inputText(task: GenerationTask): string {
  if (task.input.kind === "prompt") return task.input.prompt;
  // Embeddings hold nothing in the text sequences: the pool does not route them by prefix.
  if (task.input.kind === "embed") return "";
  return task.input.messages
    .map(
      (message, index) => `${index === 0 ? "" : "\u0000"}${message.role}\u0001${message.content}`,
    )
    .join("");
}

function digests(text: string): PrefixDigests {
  const chain: string[] = [];
  let previous = "";
  for (let end = blockChars; end <= text.length; end += blockChars) {
    previous = createHash("sha256")
      .update(previous)
      .update(text.slice(end - blockChars, end))
      .digest("base64");
    chain.push(previous);
  }
  return chain;
}
