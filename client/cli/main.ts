/**
 * The reference client (`npm run client -- --help`): encrypts one request, submits it to a pool
 * (local or RunPod-hosted), prints the text as it arrives and exits with the job's outcome. The
 * only file of the client that reads `process.argv` and `process.env`.
 */
import path from "node:path";
import { messageOf } from "../../shared/errors/index.js";
import { packageRoot } from "../../shared/paths.js";
import { isCleartextRemote, normalizeBaseUrl } from "../pool-client/base-url.js";
import {
  ClientError,
  ExitCode,
  InterruptedError,
  UsageError,
} from "../pool-client/client-errors.js";
import { PoolClient } from "../pool-client/pool-client.js";
import { resolveClientKey } from "../pool-client/resolve-key.js";
import { buildRequest, encryptRequest } from "./build-request.js";
import { readMessagesFile } from "./messages-file.js";
import { type ClientArgs, parseClientArgs } from "./parse-args.js";
import { StreamPrinter } from "./print.js";
import { readPromptFile } from "./prompt-file.js";
import { runJob } from "./run-job.js";
import { usageText } from "./usage.js";

const defaultUrl = "http://127.0.0.1:8000";

const out = (text: string) => void process.stdout.write(text);
const err = (text: string) => void process.stderr.write(text);

/** Environment variables the client honours; blank means unset. */
function env(name: string): string | undefined {
  const value = process.env[name]?.trim();
  return value === undefined || value === "" ? undefined : value;
}

function baseUrl(args: ClientArgs): string {
  if (args.url !== undefined) return args.url;
  const fromEnv = env("POOL_URL");
  if (fromEnv === undefined) return defaultUrl;
  try {
    return normalizeBaseUrl(fromEnv);
  } catch (error) {
    throw new UsageError(`POOL_URL: ${messageOf(error)}`);
  }
}

async function main(signal: AbortSignal): Promise<ExitCode> {
  const parsed = parseClientArgs(process.argv.slice(2));
  if (parsed.help) {
    out(usageText);
    return ExitCode.completed;
  }
  const { args } = parsed;
  const url = baseUrl(args);
  const { input } = args.request;
  const fileMessages =
    input.kind === "messages-file" ? await readMessagesFile(input.path) : undefined;
  const request = buildRequest(
    input.kind === "prompt-file"
      ? {
          ...args.request,
          input: await readPromptFile(input, {
            stdin: process.stdin,
            notify: (message) => err(`${message}\n`),
          }),
        }
      : args.request,
    fileMessages,
  );
  const keyRing = await resolveClientKey({
    keyFile: args.keyFile,
    envKey: process.env.ENCRYPTION_KEY,
    dataDir: path.resolve(env("DATA_DIR") ?? path.join(packageRoot(), ".data")),
  });
  const apiKey = args.apiKey ?? env("RUNPOD_API_KEY");
  if (apiKey !== undefined && isCleartextRemote(url)) {
    err("warning: the API key is sent unencrypted (http://) to another machine; prefer https://\n");
  }
  const clientName = args.client ?? env("POOL_CLIENT");
  const client = new PoolClient({
    baseUrl: url,
    apiKey,
    keyRing,
    client: clientName,
    ...(args.retries === undefined ? {} : { busyRetries: args.retries }),
    // The pool's code and wait only: the request is never shown.
    onBusy: (wait) =>
      err(
        `pool busy: ${wait.code ?? "overloaded"} (HTTP ${wait.status}); retrying in ${wait.seconds} s (${wait.attempt} of ${wait.retries})\n`,
      ),
  });
  const printer = new StreamPrinter({ json: args.json, quiet: args.quiet, out, err });
  return runJob(client, encryptRequest(keyRing, request), {
    stream: args.stream,
    printer,
    signal,
    warn: (message) => err(`warning: ${message}\n`),
  });
}

/** Exits once stdout has taken everything written to it (a pipe may still hold some). */
function exit(code: number): void {
  process.stdout.write("", () => process.exit(code));
}

const interrupt = new AbortController();
process.on("SIGINT", () => {
  // The first Ctrl-C cancels the job on the way out; a second one leaves at once.
  if (interrupt.signal.aborted) process.exit(ExitCode.interrupted);
  interrupt.abort(new InterruptedError());
});
// The reader went away (`| head`): nobody wants the rest, so stop as on Ctrl-C.
process.stdout.on("error", () => interrupt.abort(new InterruptedError()));

try {
  exit(await main(interrupt.signal));
} catch (error) {
  if (error instanceof ClientError) {
    const hint = error instanceof UsageError && error.pointToHelp ? " (see --help)" : "";
    err(`error: ${error.message}${hint}\n`);
    exit(error.exitCode);
  } else {
    err(
      `error: unexpected failure in the client: ${error instanceof Error ? error.stack : String(error)}\n`,
    );
    exit(ExitCode.jobFailed);
  }
}
