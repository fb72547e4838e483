/**
 * Responses API answers written over HTTP (`sendOpenAiAnswer`, as the proxy and the plaintext
 * routes write them) from hand-built stream chunks, read by the official `openai` client: function
 * calls (chat's streamed `tool_calls` pieces) through `responses.create` and the `responses.stream`
 * helper, streamed and not, and a job that fails mid-stream ending with `response.failed`.
 */
import assert from "node:assert/strict";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { after, before, describe, it } from "node:test";
import OpenAI from "openai";
import type { ResponseStreamEvent } from "openai/resources/responses/responses";
import { readResponsesBody, sendOpenAiAnswer } from "../../shared/openai/index.js";
import type { FinalChunk, StreamChunk } from "../../shared/protocol/index.js";

const final = (seq: number, finish_reason: string): FinalChunk =>
  ({
    seq,
    done: true,
    finish_reason,
    usage: { prompt_tokens: 9, completion_tokens: 6, prompt_tokens_details: { cached_tokens: 0 } },
    timings: { queue_ms: 1, load_ms: 0, ttft_ms: 2, total_ms: 3 },
  }) as FinalChunk;

/** Two calls, the first's arguments in three pieces, as chat's tool-call chunks carry them. */
const toolCallChunks = [
  { seq: 0, delta: "", tool_calls: [{ index: 0, id: "call_w", name: "get_weather" }] },
  { seq: 1, delta: "", tool_calls: [{ index: 0, arguments: '{"city"' }] },
  { seq: 2, delta: "", tool_calls: [{ index: 0, arguments: ':"Paris"}' }] },
  {
    seq: 3,
    delta: "",
    tool_calls: [{ index: 1, id: "call_t", name: "get_time", arguments: "{}" }],
  },
  final(4, "tool_calls"),
] as StreamChunk[];

const weatherTool = {
  type: "function" as const,
  name: "get_weather",
  parameters: { type: "object", properties: { city: { type: "string" } }, required: ["city"] },
  strict: false,
};
const timeTool = { type: "function" as const, name: "get_time", parameters: {}, strict: false };

async function* chunksOf(chunks: readonly StreamChunk[], failAfter?: number) {
  for (const [index, chunk] of chunks.entries()) {
    if (index === failAfter) throw new Error("the job timed out");
    yield chunk;
  }
}

describe("Responses answers over HTTP, read by the openai client", () => {
  let server: http.Server;
  let openai: OpenAI;

  before(async () => {
    server = http.createServer(async (request, response) => {
      const parts: Buffer[] = [];
      for await (const part of request) parts.push(part as Buffer);
      const body = JSON.parse(Buffer.concat(parts).toString("utf8")) as Record<string, unknown>;
      const { echo } = readResponsesBody(body);
      const failing = body.input === "fail";
      await sendOpenAiAnswer(response, {
        shape: {
          route: "responses",
          stream: body.stream === true,
          includeUsage: false,
          responses: echo,
        },
        jobId: "job7",
        model: "tiny",
        chunks: failing
          ? chunksOf([{ seq: 0, delta: "Hel" }, { seq: 1, delta: "lo" }, final(2, "stop")], 2)
          : chunksOf(toolCallChunks),
        failureOf: (error) => ({ code: "TIMED_OUT", message: (error as Error).message }),
      });
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const port = (server.address() as AddressInfo).port;
    openai = new OpenAI({ baseURL: `http://127.0.0.1:${port}/v1`, apiKey: "x", maxRetries: 0 });
  });

  after(() => {
    server?.close();
  });

  const request = {
    model: "tiny",
    input: "Weather and time in Paris?",
    tools: [weatherTool, timeTool],
    tool_choice: "required" as const,
  };

  it("answers function calls as function_call items, streamed and not", async () => {
    const whole = await openai.responses.create(request);
    assert.equal(whole.status, "completed");
    assert.equal(whole.output_text, "");
    assert.deepEqual(
      whole.output.map((item) =>
        item.type === "function_call" ? [item.id, item.call_id, item.name, item.arguments] : [],
      ),
      [
        ["fc_job7_0", "call_w", "get_weather", '{"city":"Paris"}'],
        ["fc_job7_1", "call_t", "get_time", "{}"],
      ],
    );
    assert.deepEqual(whole.tools, [
      { ...weatherTool, description: null },
      { ...timeTool, description: null },
    ]);
    assert.equal(whole.tool_choice, "required");

    const stream = openai.responses.stream(request);
    const snapshots: string[] = [];
    stream.on("response.function_call_arguments.delta", (event) => {
      snapshots.push(event.snapshot);
    });
    const streamed = await stream.finalResponse();
    assert.deepEqual(snapshots, ['{"city"', '{"city":"Paris"}', "{}"]);
    assert.deepEqual(
      streamed.output.map((item) => (item.type === "function_call" ? item.arguments : "")),
      whole.output.map((item) => (item.type === "function_call" ? item.arguments : "")),
    );
    assert.deepEqual(streamed.usage, whole.usage);
    assert.equal(streamed.usage?.total_tokens, 15);
  });

  it("ends a stream whose job failed with response.failed", async () => {
    const events: ResponseStreamEvent[] = [];
    for await (const event of await openai.responses.create({
      model: "tiny",
      input: "fail",
      stream: true,
    })) {
      events.push(event);
    }
    const last = events.at(-1);
    assert.equal(last?.type, "response.failed");
    assert.equal(last?.type === "response.failed" && last.response.status, "failed");
    assert.deepEqual(last?.type === "response.failed" && last.response.error, {
      code: "timed_out",
      message: "the job timed out",
    });
    const texts = events.flatMap((event) =>
      event.type === "response.output_text.done" ? [event.text] : [],
    );
    assert.deepEqual(texts, ["Hello"], "the text so far, closed as incomplete");
    const failed = await openai.responses.stream({ model: "tiny", input: "fail" }).finalResponse();
    assert.equal(failed.status, "failed");
  });
});
