/**
 * The caller's side of the pool, run on the caller's machine: the pool client (`pool-client/`), the
 * reference CLI (`cli/`) and the encrypting OpenAI proxy (`proxy/`). What the tests and benchmarks
 * drive directly is exported here.
 */

export { parseClientArgs } from "./cli/parse-args.js";
export { UsageError } from "./pool-client/client-errors.js";
export { longPollStream } from "./pool-client/long-poll-stream.js";
export { PoolClient } from "./pool-client/pool-client.js";
export { OpenAiProxy } from "./proxy/openai-proxy.js";
