/**
 * The encrypting proxy's own answers, without a pool behind it: OpenAI-shaped errors with their
 * HTTP status when the pool is unreachable or refuses the API key, and for requests it can judge
 * itself (bad JSON, bad fields, unknown routes, a body too large), with nothing sent on.
 */
import assert from "node:assert/strict";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { after, before, describe, it } from "node:test";
import OpenAI from "openai";
import { OpenAiProxy, PoolClient } from "../../client/index.js";
import { FernetKey, KeyRing } from "../../shared/crypto/index.js";
import { freePort } from "../../shared/redis/index.js";

const keyRing = new KeyRing([FernetKey.generate()]);
const messages = [{ role: "user" as const, content: "Hi" }];

describe("encrypting proxy errors", () => {
  let refusing: http.Server;
  let refusingCalls = 0;
  let deadProxy: OpenAiProxy;
  let refusedProxy: OpenAiProxy;

  const start = (baseUrl: string, maxBodyBytes?: number) =>
    OpenAiProxy.start(
      {
        client: new PoolClient({ baseUrl, apiKey: "wrong", keyRing, requestTimeoutMs: 2000 }),
        keyRing,
        ...(maxBodyBytes === undefined ? {} : { maxBodyBytes }),
      },
      "127.0.0.1",
      0,
    );
  const openai = (proxy: OpenAiProxy) =>
    new OpenAI({ baseURL: `${proxy.url}/v1`, apiKey: "x", maxRetries: 0 });

  before(async () => {
    // A pool that refuses every API key, as the local API with API_KEY set or RunPod does.
    refusing = http.createServer((_request, response) => {
      refusingCalls += 1;
      response.writeHead(401, { "content-type": "application/json" });
      response.end(JSON.stringify({ error: "Unauthorized" }));
    });
    await new Promise<void>((resolve) => refusing.listen(0, "127.0.0.1", resolve));
    deadProxy = await start(`http://127.0.0.1:${await freePort()}`, 1024);
    refusedProxy = await start(`http://127.0.0.1:${(refusing.address() as AddressInfo).port}`);
  });

  after(async () => {
    await deadProxy?.close();
    await refusedProxy?.close();
    refusing?.close();
  });

  it("answers 502 when the pool cannot be reached, 401 when it refuses the API key", async () => {
    await assert.rejects(
      openai(deadProxy).chat.completions.create({ model: "m", messages }),
      (error: unknown) =>
        error instanceof OpenAI.APIError && error.status === 502 && error.code === "upstream",
    );
    await assert.rejects(
      openai(refusedProxy).chat.completions.create({ model: "m", messages, stream: true }),
      (error: unknown) =>
        error instanceof OpenAI.AuthenticationError && /API key/.test(error.message),
    );
    const models = await openai(deadProxy).models.list();
    assert.deepEqual(
      models.data.map((model) => model.id),
      ["default"],
      "a pool that lists no models: the endpoint's only one",
    );
  });

  it("judges bad requests itself, sending nothing on", async () => {
    const before = refusingCalls;
    const post = (route: string, body: string) =>
      fetch(`${refusedProxy.url}${route}`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body,
      });
    const invalid = await post("/v1/chat/completions", "{not json");
    assert.equal(invalid.status, 400);
    assert.equal(
      ((await invalid.json()) as { error: { type: string } }).error.type,
      "invalid_request_error",
    );
    const badField = await post("/v1/completions", JSON.stringify({ prompt: "x", best_of: 3 }));
    assert.equal(badField.status, 400);
    assert.match(
      ((await badField.json()) as { error: { message: string } }).error.message,
      /best_of/,
    );
    const noInput = await post("/v1/embeddings", "{}");
    assert.equal(noInput.status, 400);
    assert.match(
      ((await noInput.json()) as { error: { message: string } }).error.message,
      /request\.input/,
    );
    assert.equal((await post("/v1/rerank", "{}")).status, 404);
    assert.equal(refusingCalls, before, "nothing reached the pool");
    const large = await fetch(`${deadProxy.url}/v1/completions`, {
      method: "POST",
      body: JSON.stringify({ prompt: "x".repeat(5000) }),
    });
    assert.equal(large.status, 413);
  });
});
