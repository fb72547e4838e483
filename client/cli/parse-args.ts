import { type ParseArgsConfig, parseArgs } from "node:util";
import { clientNamePattern } from "../../shared/crypto/index.js";
import { messageOf } from "../../shared/errors/index.js";
import { normalizeBaseUrl } from "../pool-client/base-url.js";
import { UsageError } from "../pool-client/client-errors.js";
import { numericSamplingFlags, type SamplingParams, samplingParams } from "./sampling-flags.js";

/** Where the request's text comes from. */
export type RequestInput =
  | { kind: "prompt"; prompt: string }
  | { kind: "chat"; system: string | undefined; user: string }
  | { kind: "messages-file"; path: string }
  /**
   * The PROMPT read from a file, `-` meaning standard input (`--prompt-file`, or a lone `-` as
   * PROMPT); with `--system` it is the user message of a chat, as PROMPT is.
   */
  | { kind: "prompt-file"; path: string; system: string | undefined };

/** The request the command line describes, before it is built and encrypted. */
export interface RequestArgs {
  input: RequestInput;
  model: string | undefined;
  sampling: SamplingParams;
  /** `--encrypt-output`: ask for the output encrypted (`"encrypt_output": true`). */
  encryptOutput: boolean;
}

/** The command line, checked. Absent options are `undefined`: defaults come from the environment. */
export interface ClientArgs {
  request: RequestArgs;
  /** Base URL, normalised (no trailing slash). */
  url: string | undefined;
  apiKey: string | undefined;
  keyFile: string | undefined;
  /** `--client NAME`: the client's name in the pool's keys file (default: `$POOL_CLIENT`). */
  client: string | undefined;
  /** `--retries`: times a job refused for overload is sent again (default: the client's). */
  retries: number | undefined;
  /** `false` for `--no-stream` (`/runsync`). */
  stream: boolean;
  json: boolean;
  quiet: boolean;
}

export type ParsedArgs = { help: true } | { help: false; args: ClientArgs };

const options = {
  chat: { type: "string", short: "c" },
  system: { type: "string", short: "s" },
  "messages-file": { type: "string" },
  "prompt-file": { type: "string" },
  model: { type: "string", short: "m" },
  "max-tokens": { type: "string", short: "n" },
  temperature: { type: "string", short: "t" },
  "top-p": { type: "string" },
  "top-k": { type: "string" },
  "min-p": { type: "string" },
  seed: { type: "string" },
  stop: { type: "string", multiple: true },
  "repeat-penalty": { type: "string" },
  "presence-penalty": { type: "string" },
  "frequency-penalty": { type: "string" },
  choices: { type: "string" },
  logprobs: { type: "string" },
  url: { type: "string", short: "u" },
  "api-key": { type: "string" },
  "no-stream": { type: "boolean" },
  "encrypt-output": { type: "boolean" },
  retries: { type: "string" },
  "key-file": { type: "string", short: "k" },
  client: { type: "string" },
  json: { type: "boolean" },
  quiet: { type: "boolean", short: "q" },
  help: { type: "boolean", short: "h" },
} as const satisfies ParseArgsConfig["options"];

// Every sampling flag must be declared above, or it would be silently ignored.
for (const { flag } of numericSamplingFlags) {
  if (!(flag in options)) throw new Error(`sampling flag --${flag} is not declared`);
}

/**
 * Parses the client's arguments (without `node` and the script). Throws a {@link UsageError}
 * naming the flag and the rule; prompt text is never quoted back.
 */
export function parseClientArgs(argv: readonly string[]): ParsedArgs {
  let parsed: ReturnType<typeof parseArgs<{ options: typeof options; allowPositionals: true }>>;
  try {
    parsed = parseArgs({ args: [...argv], options, allowPositionals: true, strict: true });
  } catch (error) {
    throw new UsageError(messageOf(error));
  }
  const { values, positionals } = parsed;
  if (values.help) return { help: true };

  let url: string | undefined;
  if (values.url !== undefined) {
    try {
      url = normalizeBaseUrl(values.url);
    } catch (error) {
      throw new UsageError(`--url: ${messageOf(error)}`);
    }
  }
  if (values["api-key"] !== undefined && values["api-key"].trim() === "") {
    throw new UsageError("--api-key must not be empty");
  }
  const retries = values.retries;
  if (retries !== undefined && !/^\d{1,3}$/.test(retries.trim())) {
    throw new UsageError("--retries must be a whole number in [0, 999]");
  }
  const client = values.client?.trim();
  if (client !== undefined && !clientNamePattern.test(client)) {
    throw new UsageError(
      '--client must be 1-64 letters, digits, ".", "_" or "-", starting with a letter or digit',
    );
  }
  if (values.model !== undefined && values.model.trim() === "") {
    throw new UsageError("--model must not be empty");
  }
  return {
    help: false,
    args: {
      request: {
        input: requestInput(values, positionals),
        model: values.model?.trim(),
        sampling: samplingParams(values),
        encryptOutput: values["encrypt-output"] === true,
      },
      url,
      apiKey: values["api-key"]?.trim(),
      keyFile: values["key-file"],
      client,
      retries: retries === undefined ? undefined : Number(retries.trim()),
      stream: values["no-stream"] !== true,
      json: values.json === true,
      quiet: values.quiet === true,
    },
  };
}

function requestInput(
  values: { chat?: string; system?: string; "messages-file"?: string; "prompt-file"?: string },
  positionals: readonly string[],
): RequestInput {
  // A lone "-" is read from standard input, as `--prompt-file -` is.
  const stdinPrompt = positionals.length === 1 && positionals[0] === "-";
  const prompt = positionals.length > 0 && !stdinPrompt ? positionals.join(" ") : undefined;
  const { chat, system } = values;
  const file = values["messages-file"];
  const promptFile = values["prompt-file"] ?? (stdinPrompt ? "-" : undefined);
  if (file !== undefined) {
    if (
      prompt !== undefined ||
      promptFile !== undefined ||
      chat !== undefined ||
      system !== undefined
    ) {
      throw new UsageError(
        "--messages-file holds the whole request: give no PROMPT, --prompt-file, --chat or --system with it",
      );
    }
    return { kind: "messages-file", path: file };
  }
  if (promptFile !== undefined) {
    if (values["prompt-file"] !== undefined && (prompt !== undefined || stdinPrompt)) {
      throw new UsageError("give the prompt once: as PROMPT or with --prompt-file, not both");
    }
    if (chat !== undefined) {
      throw new UsageError(
        "give the user message once: as --chat TEXT or with --prompt-file, not both",
      );
    }
    if (promptFile === "") throw new UsageError("--prompt-file needs a file name, or - for stdin");
    return { kind: "prompt-file", path: promptFile, system };
  }
  if (chat !== undefined || system !== undefined) {
    if (chat !== undefined && prompt !== undefined) {
      throw new UsageError("give the user message once: as --chat TEXT or as PROMPT, not both");
    }
    const user = chat ?? prompt;
    if (user === undefined) {
      throw new UsageError(
        "--system needs a user message: add --chat TEXT, a PROMPT or --prompt-file FILE",
      );
    }
    if (user === "") throw new UsageError("the user message must not be empty");
    return { kind: "chat", system, user };
  }
  if (prompt === undefined) {
    throw new UsageError(
      "nothing to send: give a PROMPT, --prompt-file FILE, --chat TEXT or --messages-file FILE",
    );
  }
  if (prompt === "") throw new UsageError("the PROMPT must not be empty");
  return { kind: "prompt", prompt };
}
