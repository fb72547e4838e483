/**
 * The encrypting OpenAI proxy (`npm run proxy -- --help`), run on the caller's machine: any
 * OpenAI client pointed at it talks to a pool (local or RunPod) with every request and answer
 * Fernet-encrypted on the way. The only file of the proxy that reads `process.argv` and
 * `process.env`.
 */
import path from "node:path";
import { parseArgs } from "node:util";
import { clientNamePattern } from "../../shared/crypto/index.js";
import { isAddressInUse, messageOf } from "../../shared/errors/index.js";
import { packageRoot } from "../../shared/paths.js";
import { isCleartextRemote, normalizeBaseUrl } from "../pool-client/base-url.js";
import { ClientError, ExitCode, UsageError } from "../pool-client/client-errors.js";
import { PoolClient } from "../pool-client/pool-client.js";
import { resolveClientKey } from "../pool-client/resolve-key.js";
import { OpenAiProxy } from "./openai-proxy.js";

const usage = `npm run proxy -- [--listen HOST:PORT] [--url BASE] [options]

An OpenAI-compatible server on this machine (GET /v1/models, POST /v1/chat/completions,
POST /v1/completions, streamed or not) that forwards every request to a secure-llm-pool endpoint
Fernet-encrypted, and opens its encrypted answers: only ciphertext travels to the endpoint.
Point any OpenAI client at http://HOST:PORT/v1 (any API key).

  --listen HOST:PORT   where to listen (default 127.0.0.1:8080; every program that can reach
                       it can use the endpoint through it, so keep it on this machine)
  --url BASE, -u       the pool: http://127.0.0.1:8000 (default, or POOL_URL) or
                       https://api.runpod.ai/v2/<endpoint id>
  --api-key KEY        sent to the pool as Authorization: Bearer (default RUNPOD_API_KEY)
  --key-file FILE, -k  the Fernet key (default ENCRYPTION_KEY, else the local stack's key file)
  --client NAME        this client's name in the pool's CLIENT_KEYS_FILE (default POOL_CLIENT;
                       none: the pool's own key); the key is then the client's own
  --models A,B         the model names /v1/models lists (default: the pool's /health list,
                       else "default", which stands for the endpoint's only model)
  --quiet, -q          no line per request
  --help, -h           this text
`;

function env(name: string): string | undefined {
  const value = process.env[name]?.trim();
  return value === undefined || value === "" ? undefined : value;
}

function url(flag: string | undefined): string {
  const [from, text] =
    flag !== undefined ? ["--url", flag] : ["POOL_URL", env("POOL_URL") ?? "http://127.0.0.1:8000"];
  try {
    return normalizeBaseUrl(text);
  } catch (error) {
    throw new UsageError(`${from}: ${messageOf(error)}`);
  }
}

function listenAddress(text: string): { host: string; port: number } {
  const match = /^(\[[^\]]+\]|[^:]+):(\d{1,5})$/.exec(text);
  const port = Number(match?.[2]);
  if (match === null || port > 65535) {
    throw new UsageError("--listen must be HOST:PORT, e.g. 127.0.0.1:8080");
  }
  return { host: (match[1] as string).replace(/^\[|\]$/g, ""), port };
}

const options = {
  listen: { type: "string" },
  url: { type: "string", short: "u" },
  "api-key": { type: "string" },
  "key-file": { type: "string", short: "k" },
  client: { type: "string" },
  models: { type: "string" },
  quiet: { type: "boolean", short: "q" },
  help: { type: "boolean", short: "h" },
} as const;

function parseFlags(args: string[]) {
  try {
    return parseArgs({ args, options, strict: true }).values;
  } catch (error) {
    throw new UsageError(messageOf(error));
  }
}

async function main(): Promise<OpenAiProxy | undefined> {
  const values = parseFlags(process.argv.slice(2));
  if (values.help) {
    process.stdout.write(usage);
    return undefined;
  }
  const { host, port } = listenAddress(values.listen ?? "127.0.0.1:8080");
  if (!/^(127\.\d+\.\d+\.\d+|::1|localhost)$/.test(host)) {
    process.stderr.write(
      `warning: listening on ${host}: whatever reaches it can use the endpoint with your keys, unauthenticated\n`,
    );
  }
  const baseUrl = url(values.url);
  const keyRing = await resolveClientKey({
    keyFile: values["key-file"],
    envKey: process.env.ENCRYPTION_KEY,
    dataDir: path.resolve(env("DATA_DIR") ?? path.join(packageRoot(), ".data")),
  });
  const apiKey = values["api-key"]?.trim() || env("RUNPOD_API_KEY");
  if (apiKey !== undefined && isCleartextRemote(baseUrl)) {
    process.stderr.write(
      "warning: the API key is sent unencrypted (http://) to another machine; prefer https://\n",
    );
  }
  const clientName = values.client?.trim() || env("POOL_CLIENT");
  if (clientName !== undefined && !clientNamePattern.test(clientName)) {
    throw new UsageError(
      '--client must be 1-64 letters, digits, ".", "_" or "-", starting with a letter or digit',
    );
  }
  const models = values.models
    ?.split(",")
    .map((name) => name.trim())
    .filter((name) => name !== "");
  const proxy = await OpenAiProxy.start(
    {
      // A refusal for overload goes back to the OpenAI client (429/503, Retry-After) to retry.
      client: new PoolClient({ baseUrl, apiKey, keyRing, client: clientName, busyRetries: 0 }),
      keyRing,
      models: models?.length ? models : undefined,
      log: values.quiet ? undefined : (line) => process.stderr.write(`${line}\n`),
    },
    host,
    port,
  );
  process.stderr.write(`OpenAI-compatible proxy on ${proxy.url}/v1 -> ${baseUrl} (encrypted)\n`);
  return proxy;
}

try {
  const proxy = await main();
  if (proxy !== undefined) {
    const stop = () => void proxy.close().then(() => process.exit(0));
    process.once("SIGINT", stop);
    process.once("SIGTERM", stop);
  }
} catch (error) {
  if (error instanceof ClientError) {
    process.stderr.write(`error: ${error.message}\n`);
    process.exit(error.exitCode);
  }
  process.stderr.write(
    `error: ${isAddressInUse(error) ? "the --listen address is in use" : messageOf(error)}\n`,
  );
  process.exit(ExitCode.connection);
}
