/** Reading what the official `openai` client streams, for the tests of the proxy. */
import type OpenAI from "openai";

/** The text and the usage of a streamed chat completion (`stream_options.include_usage`). */
export async function readChatStream(
  stream: AsyncIterable<OpenAI.Chat.Completions.ChatCompletionChunk>,
): Promise<{ text: string; usage: OpenAI.CompletionUsage | null | undefined }> {
  let text = "";
  let usage: OpenAI.CompletionUsage | null | undefined;
  for await (const chunk of stream) {
    text += chunk.choices[0]?.delta.content ?? "";
    usage ??= chunk.usage;
  }
  return { text, usage };
}
