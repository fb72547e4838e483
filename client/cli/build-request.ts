import type { KeyRing } from "../../shared/crypto/index.js";
import {
  type ChatMessage,
  describeIssues,
  type GenerationRequest,
  generationRequestSchema,
  type JobInput,
} from "../../shared/protocol/index.js";
import { UsageError } from "../pool-client/client-errors.js";
import type { RequestArgs } from "./parse-args.js";

/** The pool's own `MAX_TOKENS_LIMIT` is unknown here; it checks that bound itself. */
const localLimits = { maxTokensLimit: 1_000_000 };

/**
 * The request the command line describes, checked against the pool's request schema so a
 * mistake is reported before anything is sent. `fileMessages` are the messages of
 * `--messages-file`, already read; a `--prompt-file` is read before (`readPromptFile`). Throws a {@link UsageError} naming fields, never their text.
 */
export function buildRequest(
  args: RequestArgs,
  fileMessages?: readonly ChatMessage[],
): GenerationRequest {
  const { input } = args;
  const request: Record<string, unknown> = {};
  if (args.model !== undefined) request.model = args.model;
  if (input.kind === "prompt") {
    request.prompt = input.prompt;
  } else if (input.kind === "chat") {
    request.messages = [
      ...(input.system === undefined ? [] : [{ role: "system", content: input.system }]),
      { role: "user", content: input.user },
    ];
  } else if (input.kind === "messages-file") {
    if (fileMessages === undefined) throw new Error("the messages file was not read");
    request.messages = fileMessages;
  } else {
    throw new Error("the prompt file was not read");
  }
  if (Object.keys(args.sampling).length > 0) request.sampling_params = args.sampling;
  if (args.encryptOutput) request.encrypt_output = true;
  const checked = generationRequestSchema(localLimits).safeParse(request);
  if (!checked.success) {
    throw new UsageError(`the request is not valid: ${describeIssues(checked.error.issues)}`);
  }
  return checked.data;
}

/** The job input the pool takes: the request as JSON, encrypted with the ring's first key. */
export function encryptRequest(keyRing: KeyRing, request: GenerationRequest): JobInput {
  return { encrypted_input: keyRing.encrypt(JSON.stringify(request)) };
}
