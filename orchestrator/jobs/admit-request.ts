import type { KeyRing } from "../../shared/crypto/index.js";
import {
  DecryptFailedError,
  InvalidInputError,
  InvalidRequestError,
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
}

const utf8 = new TextDecoder("utf-8", { fatal: true });

/**
 * Checks a job's input and returns the task to queue, or throws the coded error the caller will
 * see. Nothing is queued for a request that fails here. Messages name fields, never their values.
 */
export function admitRequest(input: unknown, policy: AdmissionPolicy): GenerationTask {
  const parsedInput = jobInputSchema.safeParse(input);
  if (!parsedInput.success) {
    throw new InvalidInputError(
      `the input must be {"encrypted_input": "<Fernet token>"} and nothing else; plaintext requests are refused (${describeIssues(parsedInput.error.issues, "input")})`,
    );
  }
  let plaintext: Buffer;
  try {
    plaintext = policy.keyRing.decrypt(parsedInput.data.encrypted_input);
  } catch {
    throw new DecryptFailedError();
  }
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
  return toGenerationTask(request.data, model, { maxTokens: policy.defaultMaxTokens });
}

function onlyModel(models: readonly string[]): string {
  if (models.length === 1) return models[0] as string;
  throw new InvalidRequestError(
    `request.model: required, since this endpoint serves several models: ${models.join(", ")}`,
  );
}
