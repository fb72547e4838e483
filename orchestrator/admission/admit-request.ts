import type { EncryptOutputMode } from "../../shared/config/index.js";
import { FernetKey, KeyRing, tokenAge } from "../../shared/crypto/index.js";
import {
  DecryptFailedError,
  InvalidInputError,
  InvalidRequestError,
  OpenAiPlaintextDisabledError,
  RequestTooLargeError,
  TokenExpiredError,
  UnknownModelError,
} from "../../shared/errors/index.js";
import {
  looksLikeOpenAiBody,
  type OpenAiAnswerShape,
  openAiJobSchema,
  openAiRouteOf,
  readOpenAiBody,
} from "../../shared/openai/index.js";
import {
  describeIssues,
  drawSeed,
  type GenerationTask,
  generationRequestSchema,
  jobInputSchema,
  type RequestLimits,
  toGenerationTask,
} from "../../shared/protocol/index.js";
import { checkServesEmbeddings } from "./admit-embeddings.js";

/** The named clients' rings now (`CLIENT_KEYS_FILE`, reloaded on change): one map read each. */
export interface ClientRings {
  ringOf(name: string): KeyRing | undefined;
}

export interface AdmissionPolicy {
  /** The anonymous client's ring (`ENCRYPTION_KEY`): requests that name no client. */
  keyRing: KeyRing;
  /** The named clients; without it a request that names a client fails `DECRYPT_FAILED`. */
  clients?: ClientRings;
  /** Names of the models served, in `MODELS` order. */
  models: readonly string[];
  limits: RequestLimits;
  defaultMaxTokens: number;
  /** `MAX_REQUEST_BYTES`: a longer token is refused before it is decrypted. */
  maxRequestBytes: number;
  /** `FERNET_TTL_SECONDS`: the replay window; 0 = off. */
  ttlSeconds: number;
  /** `ENCRYPT_OUTPUT`. */
  encryptOutput: EncryptOutputMode;
  /** `ALLOW_PLAINTEXT_OPENAI`: take plaintext `{"openai_route", "openai_input"}` jobs. */
  allowPlaintextOpenai?: boolean;
  /** The served models with the `embeddings` setting: the only ones `input` requests may name. */
  embeddingModels?: readonly string[];
  /**
   * Sequences of one thread of `model` (its `sequences`): the most choices (`n`) a request may
   * ask of it, since a job's choices run on one thread. Default: no bound but the contract's.
   */
  sequencesPerThread?: (model: string) => number;
  /** The clock the replay window is checked against, in ms (tests). Default `Date.now`. */
  now?: () => number;
}

/** An admitted job: the task to queue, and whether its stream chunks are to be encrypted. */
export interface Admitted {
  task: GenerationTask;
  /** The client that sent it; `undefined`: the anonymous one. */
  client: string | undefined;
  /** Its client's ring as it was at admission: what its outputs are sealed with. */
  ring: KeyRing;
  encryptOutput: boolean;
  /** A plaintext OpenAI job (`openai_route`): its answer is OpenAI's, not the pool's chunks. */
  openai?: OpenAiAnswerShape;
}

const decoyRing = new KeyRing([FernetKey.generate()]);

const utf8 = new TextDecoder("utf-8", { fatal: true });

/**
 * Checks a job's input and returns the task to queue, or throws the coded error the caller will
 * see. Nothing is queued for a request that fails here. Messages name fields, never their values.
 */
export function admitRequest(input: unknown, policy: AdmissionPolicy): Admitted {
  if (typeof input === "object" && input !== null && "openai_route" in input) {
    return admitOpenAiJob(input, policy);
  }
  const parsedInput = jobInputSchema.safeParse(input);
  if (!parsedInput.success) {
    throw new InvalidInputError(
      `the input must be {"encrypted_input": "<Fernet token>"} and nothing else; plaintext requests are refused (${describeIssues(parsedInput.error.issues, "input")})`,
    );
  }
  const token = parsedInput.data.encrypted_input;
  // The request inside is smaller than its token (base64 of it), so this bounds it too.
  if (token.length > policy.maxRequestBytes) {
    throw new RequestTooLargeError(
      `input.encrypted_input: the token is ${token.length} bytes; this endpoint takes at most ${policy.maxRequestBytes} (MAX_REQUEST_BYTES)`,
    );
  }
  const { client } = parsedInput.data;
  const ring = client === undefined ? policy.keyRing : policy.clients?.ringOf(client);
  let plaintext: Buffer;
  try {
    // An unknown client fails exactly as a bad token, after the same work (a MAC checked with a
    // key of no client): neither the answer nor its time says which of the two it was.
    plaintext = (ring ?? decoyRing).decrypt(token);
    if (ring === undefined) throw new DecryptFailedError();
  } catch {
    throw new DecryptFailedError();
  }
  checkReplayWindow(token, policy);
  let json: unknown;
  try {
    json = JSON.parse(utf8.decode(plaintext));
  } catch {
    throw new InvalidRequestError("the decrypted request is not UTF-8 JSON");
  }
  // An OpenAI body (what the encrypting proxy's callers write) means the same request.
  if (looksLikeOpenAiBody(json)) json = readOpenAiBody(openAiRouteOf(json), json).request;
  return { ...admitValidated(json, policy, false), client, ring };
}

/**
 * RunPod's hosted `/openai/v1/...` path (and the local API's): the OpenAI body travels in
 * plaintext, so it is taken only where the operator opted in (`ALLOW_PLAINTEXT_OPENAI`).
 */
function admitOpenAiJob(input: object, policy: AdmissionPolicy): Admitted {
  if (policy.allowPlaintextOpenai !== true) throw new OpenAiPlaintextDisabledError();
  const job = openAiJobSchema.safeParse(input);
  if (!job.success) {
    throw new InvalidInputError(
      `an OpenAI job's input is {"openai_route": "/v1/chat/completions" | "/v1/completions" | "/v1/embeddings" | "/v1/responses", "openai_input": {...}} (${describeIssues(job.error.issues, "input")})`,
    );
  }
  const { request, shape } = readOpenAiBody(job.data.route, job.data.body);
  return {
    ...admitValidated(request, policy, true),
    client: undefined,
    ring: policy.keyRing,
    openai: shape,
  };
}

function admitValidated(
  json: unknown,
  policy: AdmissionPolicy,
  plaintext: boolean,
): Omit<Admitted, "client" | "ring"> {
  const request = generationRequestSchema(policy.limits).safeParse(json);
  if (!request.success) {
    throw new InvalidRequestError(describeIssues(request.error.issues));
  }
  const model = request.data.model ?? onlyModel(policy.models);
  if (!policy.models.includes(model)) {
    throw new UnknownModelError(
      `this endpoint does not serve the requested model; it serves: ${policy.models.join(", ")}`,
    );
  }
  if (request.data.input !== undefined) checkServesEmbeddings(model, policy);
  const choices = request.data.sampling_params?.n ?? 1;
  const perThread = policy.sequencesPerThread?.(model);
  if (perThread !== undefined && choices > perThread) {
    throw new InvalidRequestError(
      `request.sampling_params.n: must be at most ${perThread} for model "${model}": each choice takes one of the ${perThread} sequences of a model thread`,
    );
  }
  const asked = request.data.encrypt_output === true && !plaintext;
  if (asked && policy.encryptOutput === "never") {
    throw new InvalidRequestError(
      "request.encrypt_output: this endpoint does not encrypt outputs (ENCRYPT_OUTPUT=never)",
    );
  }
  return {
    task: toGenerationTask(request.data, model, {
      maxTokens: policy.defaultMaxTokens,
      seed: drawSeed,
    }),
    // A plaintext OpenAI answer is plaintext (config refuses ENCRYPT_OUTPUT=always with it).
    encryptOutput: !plaintext && (policy.encryptOutput === "always" || asked),
  };
}

/** The token verified (its MAC covers the timestamp), so its time can be trusted now. */
function checkReplayWindow(token: string, policy: AdmissionPolicy): void {
  if (policy.ttlSeconds === 0) return;
  const issuedAt = FernetKey.issuedAt(token);
  if (issuedAt === undefined) throw new DecryptFailedError();
  const nowSeconds = Math.floor((policy.now?.() ?? Date.now()) / 1000);
  const age = tokenAge(issuedAt, policy.ttlSeconds, nowSeconds);
  if (age === "expired") {
    throw new TokenExpiredError(
      `the request token is older than the replay window of ${policy.ttlSeconds} s (FERNET_TTL_SECONDS): encrypt each request just before sending it`,
    );
  }
  if (age === "future") {
    throw new TokenExpiredError(
      "the request token is dated more than 60 s in the future: check the sender's clock",
    );
  }
}

function onlyModel(models: readonly string[]): string {
  if (models.length === 1) return models[0] as string;
  throw new InvalidRequestError(
    `request.model: required, since this endpoint serves several models: ${models.join(", ")}`,
  );
}
