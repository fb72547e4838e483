import type { EncryptOutputMode } from "../../shared/config/index.js";
import { FernetKey, type KeyRing, tokenAge } from "../../shared/crypto/index.js";
import {
  DecryptFailedError,
  InvalidInputError,
  InvalidRequestError,
  RequestTooLargeError,
  TokenExpiredError,
  UnknownModelError,
} from "../../shared/errors/index.js";
import {
  describeIssues,
  type GenerationTask,
  generationRequestSchema,
  jobInputSchema,
  type RequestLimits,
  toGenerationTask,
} from "../../shared/protocol/index.js";

export interface AdmissionPolicy {
  keyRing: KeyRing;
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
  /** The clock the replay window is checked against, in ms (tests). Default `Date.now`. */
  now?: () => number;
}

/** An admitted job: the task to queue, and whether its stream chunks are to be encrypted. */
export interface Admitted {
  task: GenerationTask;
  encryptOutput: boolean;
}

const utf8 = new TextDecoder("utf-8", { fatal: true });

/**
 * Checks a job's input and returns the task to queue, or throws the coded error the caller will
 * see. Nothing is queued for a request that fails here. Messages name fields, never their values.
 */
export function admitRequest(input: unknown, policy: AdmissionPolicy): Admitted {
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
  let plaintext: Buffer;
  try {
    plaintext = policy.keyRing.decrypt(token);
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
  const asked = request.data.encrypt_output === true;
  if (asked && policy.encryptOutput === "never") {
    throw new InvalidRequestError(
      "request.encrypt_output: this endpoint does not encrypt outputs (ENCRYPT_OUTPUT=never)",
    );
  }
  return {
    task: toGenerationTask(request.data, model, { maxTokens: policy.defaultMaxTokens }),
    encryptOutput: policy.encryptOutput === "always" || asked,
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
