/**
 * OpenAI on RunPod, with the real worker (orchestrator job loop + gpu-worker) on the fake
 * platform: the `openai` client through the encrypting proxy against the hosted API, and RunPod's
 * hosted `/openai/v1` jobs (`openai_route`, plaintext, allowed here with
 * `ALLOW_PLAINTEXT_OPENAI=true`) answered as RunPod's vLLM worker does.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import OpenAI from "openai";
import { OpenAiProxy, PoolClient } from "../../client/index.js";
import { FakeRunpodPlatform } from "../fakes/runpod-platform.js";
import { tinyModelPath } from "../support/models.js";
import { abortAtFirstText, readChatStream } from "../support/openai-stream.js";
import { assertPerson, personSchema } from "../support/person-schema.js";
import { referenceTexts } from "../support/reference.js";
import { TestStack } from "../support/stack.js";

const userApiKey = "user-key-for-hosted-api";
const prompt = "Once upon a time the dog";
const messages = [{ role: "user" as const, content: "Tell me about the sun." }];

/** The `data:` payloads of server-sent event text, `[DONE]` as a string. */
function sseData(text: string): unknown[] {
  return text
    .split("\n\n")
    .filter((event) => event.startsWith("data: "))
    .map((event) => event.slice(6))
    .map((data) => (data === "[DONE]" ? data : JSON.parse(data)));
}

describe("OpenAI on a RunPod endpoint (fake platform)", () => {
  let platform: FakeRunpodPlatform;
  let stack: TestStack;
  let proxy: OpenAiProxy;
  let openai: OpenAI;
  let reference: string[];

  before(async () => {
    const modelPath = await tinyModelPath({ chatTemplate: "chatml" });
    reference = await referenceTexts(modelPath, [
      { prompt, maxTokens: 32 },
      { messages, maxTokens: 24 },
    ]);
    platform = await FakeRunpodPlatform.start({ apiKey: "worker-key", holdMs: 300, userApiKey });
    stack = await TestStack.start({
      models: `tiny=${modelPath}`,
      runpod: platform.env(),
      env: {
        MODEL_SEQUENCES: "2",
        CONTEXT_SIZE: "1024",
        STREAM_POST_WINDOW_MS: "5",
        DELTA_WINDOW_MS: "0",
        ALLOW_PLAINTEXT_OPENAI: "true",
      },
      label: "rp-openai",
    });
    const client = new PoolClient({
      baseUrl: platform.hostedUrl,
      apiKey: userApiKey,
      keyRing: stack.keyRing,
      idlePollMs: 50,
    });
    proxy = await OpenAiProxy.start({ client, keyRing: stack.keyRing }, "127.0.0.1", 0);
    openai = new OpenAI({ baseURL: `${proxy.url}/v1`, apiKey: "unused", maxRetries: 0 });
  });

  after(async () => {
    await proxy?.close();
    await stack?.stop();
    await platform?.close();
  });

  it("serves the openai client through the proxy: models, completion, chat stream", async () => {
    const models = await openai.models.list();
    assert.deepEqual(
      models.data.map((model) => model.id),
      ["default"],
      "the hosted API lists no models: the endpoint's only one",
    );
    const completion = await stack.explain(
      openai.completions.create({ model: "default", prompt, max_tokens: 32, temperature: 0 }),
    );
    assert.equal(completion.choices[0]?.text, reference[0]);

    const stream = await openai.chat.completions.create({
      model: "tiny",
      messages,
      max_tokens: 24,
      temperature: 0,
      stream: true,
      stream_options: { include_usage: true },
    });
    const { text, usage } = await readChatStream(stream);
    assert.equal(text, reference[1]);
    assert.ok(usage && usage.completion_tokens > 0);
    for (const post of [...platform.streamPosts, ...platform.outputPosts]) {
      const body = JSON.stringify(post.body);
      assert.ok(!body.includes("Tell me about") && !body.includes(text.slice(0, 16)));
    }
  });

  it("holds the answer to a JSON Schema through the proxy", async () => {
    const completion = await openai.chat.completions.create({
      model: "tiny",
      messages: [{ role: "user", content: "A person please" }],
      max_tokens: 200,
      temperature: 0,
      response_format: {
        type: "json_schema",
        json_schema: { name: "person", schema: personSchema },
      },
    });
    assert.equal(completion.choices[0]?.finish_reason, "stop");
    assertPerson(JSON.parse(completion.choices[0]?.message.content ?? ""));
  });

  it("cancels the RunPod job when the caller goes away", async () => {
    const id = await abortAtFirstText(openai);
    await platform.until(
      () =>
        stack.logs.some((line) => line.includes(id) && line.includes("the platform stopped a job")),
      15_000,
      "the worker to stop the job",
    );
    assert.equal(platform.output(id), undefined, "a stopped job posts no result");
  });

  it("streams an openai_route job as server-sent event text", async () => {
    platform.enqueue({
      id: "oa-stream",
      input: {
        openai_route: "/v1/chat/completions",
        openai_input: {
          model: "tiny",
          messages,
          max_tokens: 24,
          temperature: 0,
          stream: true,
          stream_options: { include_usage: true },
        },
      },
    });
    const final = await platform.waitForOutput("oa-stream");
    const posted = platform.streamed("oa-stream");
    assert.ok(posted.length > 1, "several stream posts");
    assert.ok(
      posted.every((output) => typeof output === "string"),
      "each post is SSE text",
    );
    const events = sseData(posted.join(""));
    assert.equal(events.at(-1), "[DONE]");
    const chunks = events.slice(0, -1) as {
      object: string;
      choices: { delta: { content?: string } }[];
      usage?: { completion_tokens: number };
    }[];
    assert.ok(chunks.every((chunk) => chunk.object === "chat.completion.chunk"));
    const text = chunks.map((chunk) => chunk.choices[0]?.delta.content ?? "").join("");
    assert.equal(text, reference[1]);
    assert.ok((chunks.at(-1)?.usage?.completion_tokens ?? 0) > 0);
    assert.deepEqual(sseData((final.body.output as string[]).join("")), events);
  });

  it("answers openai_route /v1/responses jobs with Responses events, and one Response", async () => {
    const input = {
      model: "tiny",
      input: "Tell me about the sun.",
      max_output_tokens: 24,
      temperature: 0,
    };
    platform.enqueue(
      {
        id: "oa-responses-stream",
        input: { openai_route: "/v1/responses", openai_input: { ...input, stream: true } },
      },
      { id: "oa-responses", input: { openai_route: "/v1/responses", openai_input: input } },
    );
    await platform.waitForOutput("oa-responses-stream");
    const blocks = platform
      .streamed("oa-responses-stream")
      .join("")
      .split("\n\n")
      .filter((block) => block !== "");
    const events = blocks.map((block) => {
      const [name, data] = block.split("\n");
      const event = JSON.parse(data?.replace(/^data: /, "") ?? "") as {
        type: string;
        sequence_number: number;
        delta?: string;
      };
      assert.equal(name, `event: ${event.type}`, "each event named by its type");
      return event;
    });
    assert.deepEqual(
      events.map((event) => event.sequence_number),
      events.map((_, index) => index),
    );
    assert.equal(events[0]?.type, "response.created");
    assert.match(events.at(-1)?.type ?? "", /^response\.(completed|incomplete)$/, "no [DONE]");
    const text = events
      .filter((event) => event.type === "response.output_text.delta")
      .map((event) => event.delta)
      .join("");
    assert.equal(text, reference[1]);
    const [response] = (await platform.waitForOutput("oa-responses")).body.output as {
      object: string;
      output: { content: { text: string }[] }[];
      usage: { output_tokens: number };
    }[];
    assert.equal(response?.object, "response");
    assert.equal(response?.output[0]?.content[0]?.text, reference[1]);
    assert.ok((response?.usage.output_tokens ?? 0) > 0);
  });

  it("answers tool calls through the proxy and as openai_route jobs, streamed and not", async () => {
    const body = {
      model: "tiny",
      messages: [{ role: "user" as const, content: "Record a person" }],
      tools: [
        {
          type: "function" as const,
          function: { name: "record_person", parameters: personSchema },
        },
      ],
      tool_choice: "required" as const,
      max_tokens: 200,
      temperature: 0,
      seed: 3,
    };
    const viaProxy = await openai.chat.completions.create(body);
    assert.equal(viaProxy.choices[0]?.finish_reason, "tool_calls");
    const call = viaProxy.choices[0]?.message.tool_calls?.[0] as
      | { function: { name: string; arguments: string } }
      | undefined;
    assert.equal(call?.function.name, "record_person");
    assertPerson(JSON.parse(call?.function.arguments ?? ""));
    platform.enqueue(
      {
        id: "oa-tools",
        input: { openai_route: "/v1/chat/completions", openai_input: body },
      },
      {
        id: "oa-tools-stream",
        input: { openai_route: "/v1/chat/completions", openai_input: { ...body, stream: true } },
      },
    );
    const [answer] = (await platform.waitForOutput("oa-tools")).body.output as {
      choices: { message: { tool_calls: unknown[] }; finish_reason: string }[];
    }[];
    assert.equal(answer?.choices[0]?.finish_reason, "tool_calls");
    assert.deepEqual(
      ((answer?.choices[0]?.message.tool_calls ?? []) as { function: unknown }[]).map(
        (c) => c.function,
      ),
      [call?.function],
    );
    await platform.waitForOutput("oa-tools-stream");
    const events = sseData(platform.streamed("oa-tools-stream").join("")).slice(0, -1) as {
      choices: {
        delta: { tool_calls?: { index: number; function: { arguments?: string } }[] };
        finish_reason: string | null;
      }[];
    }[];
    const args = events
      .flatMap((event) => event.choices[0]?.delta.tool_calls ?? [])
      .map((piece) => piece.function.arguments ?? "")
      .join("");
    assert.equal(args, call?.function.arguments);
    assert.equal(events.at(-1)?.choices[0]?.finish_reason, "tool_calls");
  });

  it("answers a non-streaming openai_route job with one OpenAI object, and lists models", async () => {
    platform.enqueue(
      {
        id: "oa-plain",
        input: {
          openai_route: "/v1/completions",
          openai_input: { model: "tiny", prompt, max_tokens: 32, temperature: 0 },
        },
      },
      { id: "oa-models", input: { openai_route: "/v1/models", openai_input: {} } },
    );
    const [answer] = (await platform.waitForOutput("oa-plain")).body.output as {
      object: string;
      choices: { text: string }[];
      usage: { prompt_tokens: number };
    }[];
    assert.equal(answer?.object, "text_completion");
    assert.equal(answer?.choices[0]?.text, reference[0]);
    assert.ok((answer?.usage.prompt_tokens ?? 0) > 0);
    const [list] = (await platform.waitForOutput("oa-models")).body.output as {
      data: { id: string }[];
    }[];
    assert.deepEqual(
      list?.data.map((model) => model.id),
      ["tiny"],
    );
  });
});
