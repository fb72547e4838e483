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

/**
 * Streams a long completion, aborts the request at the first text (a caller going away) and
 * returns the job id the proxy gave the stream.
 */
export async function abortAtFirstText(openai: OpenAI): Promise<string> {
  const controller = new AbortController();
  const stream = await openai.completions.create(
    { model: "tiny", prompt: "a cat", max_tokens: 900, temperature: 0, stream: true },
    { signal: controller.signal },
  );
  let jobId: string | undefined;
  try {
    for await (const chunk of stream) {
      jobId = chunk.id.replace(/^cmpl-/, "");
      if (chunk.choices[0]?.text) controller.abort();
    }
  } catch {
    // The client may end the iteration with an abort error, or quietly.
  }
  if (jobId === undefined) throw new Error("the stream carried no chunk before it ended");
  return jobId;
}
