/** The client side of the pool, for the CLI (`main.ts`), tests and benchmarks. */
export { terminalStatuses } from "./api-schemas.js";
export { isCleartextRemote, normalizeBaseUrl } from "./base-url.js";
export { buildRequest, encryptRequest } from "./build-request.js";
export {
  ClientError,
  ConnectionError,
  ExitCode,
  InterruptedError,
  JobFailedError,
  UsageError,
} from "./client-errors.js";
export { type ClientArgs, type ParsedArgs, parseClientArgs } from "./parse-args.js";
export {
  type CallOptions,
  type FinishedJob,
  PoolClient,
  type PoolClientOptions,
  type RunSyncOptions,
  type SubmittedJob,
} from "./pool-client.js";
export { type PrinterOptions, StreamPrinter } from "./print.js";
export { type KeySources, resolveClientKey } from "./resolve-key.js";
