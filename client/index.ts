/**
 * The caller's side of the pool, run on the caller's machine: the pool client (`pool-client/`), the
 * reference CLI (`cli/`) and the encrypting OpenAI proxy (`proxy/`), for tests and benchmarks too.
 */

export { buildRequest, encryptRequest } from "./cli/build-request.js";
export { type ClientArgs, type ParsedArgs, parseClientArgs } from "./cli/parse-args.js";
export { type PrinterOptions, StreamPrinter } from "./cli/print.js";
export { terminalStatuses } from "./pool-client/api-schemas.js";
export { isCleartextRemote, normalizeBaseUrl } from "./pool-client/base-url.js";
export {
  ClientError,
  ConnectionError,
  ExitCode,
  InterruptedError,
  JobFailedError,
  UsageError,
} from "./pool-client/client-errors.js";
export {
  type LongPollOptions,
  longPollStream,
  type StreamPage,
} from "./pool-client/long-poll-stream.js";
export {
  type CallOptions,
  type FinishedJob,
  PoolClient,
  type PoolClientOptions,
  type RunSyncOptions,
  type SubmittedJob,
} from "./pool-client/pool-client.js";
export { type KeySources, resolveClientKey } from "./pool-client/resolve-key.js";
export { defaultModelName, OpenAiProxy, type OpenAiProxyOptions } from "./proxy/openai-proxy.js";
