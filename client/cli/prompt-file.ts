import { readFile } from "node:fs/promises";
import { UsageError } from "../pool-client/client-errors.js";
import type { RequestInput } from "./parse-args.js";

/** Standard input, read when the file is `-`. */
export interface PromptStdin extends AsyncIterable<Buffer | string> {
  readonly isTTY?: boolean;
}

export interface PromptFileSources {
  stdin: PromptStdin;
  /** Told when the prompt is awaited from a terminal (the user types it, then Ctrl-D). */
  notify: (message: string) => void;
}

/** Fails on bytes that are not UTF-8, rather than sending replacement characters; drops a BOM. */
const utf8 = new TextDecoder("utf-8", { fatal: true });

/**
 * Reads the prompt of `--prompt-file` (or `-`: standard input, to its end) and gives the request
 * input it stands for: a raw prompt, or with `--system` the user message of a chat. The text is
 * sent exactly as read, a last newline included. Errors name the file and the reason, never its
 * text.
 */
export async function readPromptFile(
  input: Extract<RequestInput, { kind: "prompt-file" }>,
  sources: PromptFileSources,
): Promise<Extract<RequestInput, { kind: "prompt" | "chat" }>> {
  const from = input.path === "-" ? "standard input" : `--prompt-file ${input.path}`;
  let bytes: Buffer;
  try {
    bytes = input.path === "-" ? await readAll(sources) : await readFile(input.path);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? "unreadable";
    throw new UsageError(`cannot read ${from} (${code})`, { pointToHelp: false });
  }
  let text: string;
  try {
    text = utf8.decode(bytes);
  } catch {
    throw new UsageError(`the prompt in ${from} is not UTF-8 text`, { pointToHelp: false });
  }
  if (text.trim() === "") {
    throw new UsageError(`the prompt in ${from} is empty`, { pointToHelp: false });
  }
  return input.system === undefined
    ? { kind: "prompt", prompt: text }
    : { kind: "chat", system: input.system, user: text };
}

async function readAll({ stdin, notify }: PromptFileSources): Promise<Buffer> {
  if (stdin.isTTY === true) notify("reading the prompt from standard input; end it with Ctrl-D");
  const chunks: Buffer[] = [];
  for await (const chunk of stdin) {
    chunks.push(typeof chunk === "string" ? Buffer.from(chunk, "utf8") : chunk);
  }
  return Buffer.concat(chunks);
}
