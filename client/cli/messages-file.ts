import { readFile } from "node:fs/promises";
import type { ChatMessage } from "../../shared/protocol/index.js";
import { UsageError } from "../pool-client/client-errors.js";

/**
 * Reads `--messages-file`: a JSON array of `{"role", "content"}` messages. Only its shape is
 * checked here (the entries are checked with the whole request); the file's text never appears
 * in a message.
 */
export async function readMessagesFile(file: string): Promise<ChatMessage[]> {
  let text: string;
  try {
    text = await readFile(file, "utf8");
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? "unreadable";
    throw new UsageError(`cannot read --messages-file ${file} (${code})`, { pointToHelp: false });
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new UsageError(`--messages-file ${file} is not valid JSON`);
  }
  if (!Array.isArray(parsed)) {
    throw new UsageError(
      `--messages-file ${file} must hold a JSON array: [{"role": "user", "content": "..."}, ...]`,
    );
  }
  return parsed as ChatMessage[];
}
