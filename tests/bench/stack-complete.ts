/**
 * One job through a running stack, as the benchmarks' caller sends it: `/run` with an encrypted
 * greedy request, then `/stream` long polls until the final chunk; timed from the `/run`.
 */
import { longPollStream } from "../../client/index.js";
import { isFinalChunk, type StreamChunk } from "../../shared/protocol/index.js";
import type { TestStack } from "../support/stack.js";
import { requestJson } from "./lean-http.js";

export interface Timed {
  ttftMs: number;
  totalMs: number;
  tokens: number;
}

export async function stackComplete(
  stack: TestStack,
  prompt: string,
  maxTokens: number,
): Promise<Timed> {
  const start = performance.now();
  const job = (await requestJson(`${stack.url}/run`, {
    input: {
      encrypted_input: stack.encrypt({
        prompt,
        sampling_params: { max_tokens: maxTokens, temperature: 0 },
      }),
    },
  })) as { id: string };
  let first = 0;
  const poll = async () =>
    (await requestJson(`${stack.url}/stream/${job.id}?wait=10000`)) as {
      status: string;
      stream: { output: StreamChunk }[];
    };
  for await (const page of longPollStream(poll)) {
    for (const { output } of page.stream) {
      if (!isFinalChunk(output)) {
        first ||= performance.now();
        continue;
      }
      const end = performance.now();
      return {
        ttftMs: first - start,
        totalMs: end - start,
        tokens: output.usage.completion_tokens,
      };
    }
    if (["FAILED", "CANCELLED", "TIMED_OUT"].includes(page.status)) {
      throw new Error(`a benchmark job ended ${page.status}`);
    }
  }
  throw new Error("a benchmark job ended without its final chunk");
}
