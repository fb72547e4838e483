/**
 * OpenAI request bodies as the pool's requests: the mapping, what is refused, the admission of
 * encrypted OpenAI bodies and of RunPod's plaintext `openai_route` jobs, structured-output
 * schemas, and the `ALLOW_PLAINTEXT_OPENAI` setting.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { type AdmissionPolicy, admitRequest } from "../../orchestrator/admission/admit-request.js";
import { type ConfigHost, loadConfig } from "../../shared/config/index.js";
import { FernetKey, KeyRing } from "../../shared/crypto/index.js";
import { ConfigError, PoolError } from "../../shared/errors/index.js";
import { jsonObjectGrammar, readOpenAiBody } from "../../shared/openai/index.js";
import { jsonSchemaIssues } from "../../shared/protocol/index.js";
import { personSchema } from "../support/person-schema.js";

const marker = "OPENAI-MARKER-77aa";
const keyRing = new KeyRing([FernetKey.generate()]);
const policy = (allowPlaintextOpenai = false): AdmissionPolicy => ({
  keyRing,
  models: ["tiny"],
  limits: { maxTokensLimit: 512 },
  defaultMaxTokens: 64,
  maxRequestBytes: 64 * 1024,
  ttlSeconds: 3600,
  encryptOutput: "request",
  allowPlaintextOpenai,
});
const sealed = (request: unknown) => ({
  encrypted_input: keyRing.encrypt(JSON.stringify(request)),
});

function refusal(run: () => unknown): PoolError {
  try {
    run();
  } catch (error) {
    assert.ok(error instanceof PoolError);
    assert.ok(!error.message.includes(marker), "request text leaked into the message");
    return error;
  }
  assert.fail("expected a refusal");
}

describe("OpenAI bodies", () => {
  it("map a chat body to the pool's request and the answer's shape", () => {
    const { request, shape } = readOpenAiBody("chat", {
      model: "tiny",
      messages: [
        { role: "developer", content: "Be brief." },
        {
          role: "user",
          content: [
            { type: "text", text: "Hi " },
            { type: "text", text: "there" },
          ],
        },
      ],
      max_tokens: 10,
      max_completion_tokens: 20,
      temperature: 0,
      stop: [],
      seed: 3,
      response_format: { type: "json_schema", json_schema: { name: "p", schema: personSchema } },
      stream: true,
      stream_options: { include_usage: true },
      user: "someone",
      n: 1,
    });
    assert.deepEqual(request, {
      model: "tiny",
      messages: [
        { role: "system", content: "Be brief." },
        { role: "user", content: "Hi there" },
      ],
      sampling_params: { max_tokens: 20, temperature: 0, seed: 3, json_schema: personSchema },
    });
    assert.deepEqual(shape, { route: "chat", stream: true, includeUsage: true });
  });

  it("map a completion body, json_object to llama.cpp's JSON grammar", () => {
    const { request, shape } = readOpenAiBody("completion", {
      prompt: ["Once"],
      response_format: { type: "json_object" },
      stream_options: { include_usage: true },
    });
    assert.deepEqual(request, { prompt: "Once", sampling_params: { grammar: jsonObjectGrammar } });
    assert.deepEqual(shape, { route: "completion", stream: false, includeUsage: false });
  });

  it("map n and logprobs to vLLM's sampling_params.n and logprobs", () => {
    const chat = readOpenAiBody("chat", {
      messages: [{ role: "user", content: "Hi" }],
      n: 3,
      logprobs: true,
      top_logprobs: 4,
    });
    assert.deepEqual(chat.request.sampling_params, { n: 3, logprobs: 4 });
    assert.equal(chat.shape.logprobs, true);
    const chosenOnly = readOpenAiBody("chat", {
      messages: [{ role: "user", content: "Hi" }],
      logprobs: true,
    });
    assert.deepEqual(chosenOnly.request.sampling_params, { logprobs: 0 });
    const without = readOpenAiBody("chat", {
      messages: [{ role: "user", content: "Hi" }],
      logprobs: false,
    });
    assert.equal(without.request.sampling_params, undefined);
    assert.equal(without.shape.logprobs, undefined);
    const completion = readOpenAiBody("completion", { prompt: "Once", logprobs: 0, n: 2 });
    assert.deepEqual(completion.request.sampling_params, { n: 2, logprobs: 0 });
    assert.equal(completion.shape.logprobs, true);
    const error = refusal(() => readOpenAiBody("completion", { prompt: "Once", logprobs: 21 }));
    assert.match(error.message, /request\.logprobs: must be at most 20/);
  });

  it("refuse what they cannot honour, by field name", () => {
    const messages = [{ role: "user", content: marker }];
    const cases: [unknown, RegExp][] = [
      [{ messages, n: 17 }, /request\.n: must be at most 16/],
      [{ messages, functions: [] }, /request\.functions: functions is not supported/],
      [{ messages, logprobs: 2 }, /request\.logprobs: must be true or false/],
      [{ messages, logprobs: true, top_logprobs: 21 }, /request\.top_logprobs: must be at most 20/],
      [{ messages, top_logprobs: 1 }, /request\.top_logprobs: needs logprobs: true/],
      [{ messages: [{ role: "robot", content: marker }] }, /request\.messages\[0\]\.role/],
      [{ messages, frobnicate: 1 }, /unknown field "frobnicate"/],
    ];
    for (const [body, expected] of cases) {
      const error = refusal(() => readOpenAiBody("chat", body));
      assert.equal(error.code, "INVALID_REQUEST");
      assert.match(error.message, expected);
    }
  });
});

describe("admission of OpenAI requests", () => {
  it("takes an encrypted OpenAI body as the same task as the pool's own request", () => {
    const openai = admitRequest(
      sealed({ model: "tiny", prompt: "Hi", max_tokens: 5, temperature: 0, seed: 9 }),
      policy(),
    );
    const own = admitRequest(
      sealed({
        model: "tiny",
        prompt: "Hi",
        sampling_params: { max_tokens: 5, temperature: 0, seed: 9 },
      }),
      policy(),
    );
    assert.deepEqual(openai, own);
    assert.equal(openai.openai, undefined, "its answer is the pool's chunks");
    const bad = refusal(() => admitRequest(sealed({ prompt: "Hi", temperature: 9 }), policy()));
    assert.equal(bad.code, "INVALID_REQUEST");
    assert.match(bad.message, /request\.sampling_params\.temperature/);
  });

  it("refuses RunPod's plaintext openai_route jobs unless ALLOW_PLAINTEXT_OPENAI is on", () => {
    const input = {
      openai_route: "/v1/chat/completions",
      openai_input: { messages: [{ role: "user", content: marker }], stream: true },
    };
    const error = refusal(() => admitRequest(input, policy(false)));
    assert.equal(error.code, "OPENAI_PLAINTEXT_DISABLED");
    assert.match(error.message, /ALLOW_PLAINTEXT_OPENAI=true/);
    assert.match(error.message, /npm run proxy/);
    const admitted = admitRequest(input, policy(true));
    assert.deepEqual(admitted.openai, { route: "chat", stream: true, includeUsage: false });
    assert.equal(admitted.encryptOutput, false);
    assert.equal(admitted.task.input.kind, "chat");
    const badRoute = refusal(() =>
      admitRequest({ openai_route: "/v1/rerank", openai_input: {} }, policy(true)),
    );
    assert.equal(badRoute.code, "INVALID_INPUT");
  });

  it("checks structured-output schemas and grammars at admission", () => {
    const admit = (sampling: unknown) =>
      admitRequest(sealed({ prompt: "Hi", sampling_params: sampling }), policy());
    assert.deepEqual(admit({ json_schema: personSchema }).task.sampling.grammar, {
      kind: "json_schema",
      schema: personSchema,
    });
    const cases: [unknown, RegExp][] = [
      [{ json_schema: { type: "nope" } }, /json_schema\.type: must be one of/],
      [
        { json_schema: { type: "string", pattern: "x" } },
        /json_schema\.pattern: unsupported keyword "pattern"/,
      ],
      [{ json_schema: { $ref: "#/$defs/x" } }, /json_schema\.\$ref: names no schema/],
      [
        { grammar: `root ::= ${marker.toLowerCase()}` },
        /grammar: not a GBNF grammar .* line 1, column 10: a rule is used but never defined/,
      ],
      [
        { grammar: 'root ::= "a"', json_schema: personSchema },
        /"json_schema" or "grammar", not both/,
      ],
    ];
    for (const [sampling, expected] of cases) {
      const error = refusal(() => admit(sampling));
      assert.equal(error.code, "INVALID_REQUEST");
      assert.match(error.message, expected);
    }
  });

  it("takes the supported JSON Schema subset", () => {
    assert.deepEqual(jsonSchemaIssues(personSchema), []);
    assert.deepEqual(
      jsonSchemaIssues({
        $defs: { item: { anyOf: [{ type: "string", format: "date" }, { type: "null" }] } },
        type: "array",
        items: { $ref: "#/$defs/item" },
        title: "annotations are fine",
      }),
      [],
    );
  });
});

describe("ALLOW_PLAINTEXT_OPENAI", () => {
  const host: ConfigHost = {
    cwd: "/srv/app",
    homeDir: "/home/tester",
    cpuCount: 4,
    runpodVolumeExists: false,
    packageRoot: "/opt/pool",
  };

  it("is off by default, and contradicts ENCRYPT_OUTPUT=always", () => {
    assert.equal(loadConfig({}, host).allowPlaintextOpenai, false);
    assert.equal(loadConfig({ ALLOW_PLAINTEXT_OPENAI: "true" }, host).allowPlaintextOpenai, true);
    assert.throws(() => loadConfig({ ALLOW_PLAINTEXT_OPENAI: "maybe" }, host), ConfigError);
    assert.throws(
      () => loadConfig({ ALLOW_PLAINTEXT_OPENAI: "1", ENCRYPT_OUTPUT: "always" }, host),
      /contradicts ENCRYPT_OUTPUT=always/,
    );
  });
});
