import http from "node:http";
import type { AddressInfo } from "node:net";
import type { KeyRing } from "../../shared/crypto/index.js";
import { InvalidRequestError, PoolError } from "../../shared/errors/index.js";
import {
  type AnswerFailure,
  openAiError,
  openAiModelList,
  openAiRouteOfPath,
  openAiRoutePaths,
  readOpenAiBody,
  sendJson,
  sendOpenAiAnswer,
} from "../../shared/openai/index.js";
import { ConnectionError, JobFailedError } from "../pool-client/client-errors.js";
import { jobFailure } from "../pool-client/job-error.js";
import type { PoolClient } from "../pool-client/pool-client.js";

export interface OpenAiProxyOptions {
  /** The pool it forwards to (local API or RunPod endpoint), holding the key to open outputs. */
  client: PoolClient;
  /** Encrypts requests; the client opens outputs with the same ring. */
  keyRing: KeyRing;
  /** `--models`: the names `/v1/models` lists. Default: the pool's `/health` list, else `default`. */
  models?: readonly string[] | undefined;
  /** Largest request body taken, in bytes. Default 10 MiB (RunPod's `/run` limit). */
  maxBodyBytes?: number;
  /** One line per request (route, status, job id, time); never text. Default: none. */
  log?: (line: string) => void;
}

/** The model name that stands for "the endpoint's only model" (sent without a model). */
export const defaultModelName = "default";

/**
 * An OpenAI-compatible server for the caller's own machine (`npm run proxy`): each
 * `/v1/chat/completions`, `/v1/completions` or `/v1/embeddings` request is mapped to the pool's request,
 * Fernet-encrypted, submitted with `encrypt_output`, and its encrypted chunks are opened and
 * answered as OpenAI's API does (streamed or not). Only ciphertext travels between the proxy and
 * the pool. A caller that disconnects cancels its job.
 */
export class OpenAiProxy {
  readonly #options: OpenAiProxyOptions;
  readonly #server: http.Server;
  readonly #maxBodyBytes: number;
  #closing: Promise<void> | undefined;

  private constructor(options: OpenAiProxyOptions) {
    this.#options = options;
    this.#maxBodyBytes = options.maxBodyBytes ?? 10 * 1024 * 1024;
    this.#server = http.createServer((request, response) => {
      void this.#handle(request, response).catch(() => {
        if (!response.headersSent) {
          const { status, body } = openAiError("INTERNAL", "internal error in the proxy");
          sendJson(response, status, body);
        } else response.destroy();
      });
    });
  }

  static async start(
    options: OpenAiProxyOptions,
    host: string,
    port: number,
  ): Promise<OpenAiProxy> {
    const proxy = new OpenAiProxy(options);
    await new Promise<void>((resolve, reject) => {
      proxy.#server.once("error", reject);
      proxy.#server.listen(port, host, () => {
        proxy.#server.off("error", reject);
        resolve();
      });
    });
    return proxy;
  }

  /** `http://host:port`, as listened on. */
  get url(): string {
    const address = this.#server.address() as AddressInfo;
    const host = address.family === "IPv6" ? `[${address.address}]` : address.address;
    return `http://${host}:${address.port}`;
  }

  close(): Promise<void> {
    this.#closing ??= new Promise<void>((resolve) => {
      this.#server.close(() => resolve());
      this.#server.closeAllConnections();
    });
    return this.#closing;
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  async #handle(request: http.IncomingMessage, response: http.ServerResponse): Promise<void> {
    const startedAt = performance.now();
    const path = new URL(request.url ?? "/", "http://proxy").pathname.replace(/\/+$/, "");
    let jobId: string | undefined;
    response.once("finish", () => {
      const ms = Math.round(performance.now() - startedAt);
      this.#options.log?.(
        `${request.method} ${path} ${response.statusCode}${jobId ? ` job=${jobId}` : ""} ${ms}ms`,
      );
    });
    if (request.method === "GET" && path === openAiRoutePaths.models) {
      sendJson(response, 200, openAiModelList(await this.#models()));
      return;
    }
    const route = openAiRouteOfPath(path);
    if (route === undefined || request.method !== "POST") {
      const { status, body } = openAiError(
        "NOT_FOUND",
        "no such route: this proxy serves GET /v1/models, POST /v1/chat/completions, POST /v1/completions, POST /v1/embeddings and POST /v1/responses",
      );
      sendJson(response, status, body);
      return;
    }
    const body = await this.#readJson(request, response);
    if (body === undefined) return;
    let mapped: ReturnType<typeof readOpenAiBody>;
    try {
      mapped = readOpenAiBody(route, body);
    } catch (error) {
      const message = error instanceof PoolError ? error.message : "the request is not valid";
      const { status, body: answer } = openAiError("INVALID_REQUEST", message);
      sendJson(response, status, answer);
      return;
    }
    const { request: poolRequest, shape } = mapped;
    const model = poolRequest.model ?? defaultModelName;
    if (poolRequest.model === defaultModelName) delete poolRequest.model;
    // Outputs come back encrypted too: only ciphertext crosses the network.
    poolRequest.encrypt_output = true;

    const { client, keyRing } = this.#options;
    const gone = new AbortController();
    response.once("close", () => {
      if (!response.writableFinished) gone.abort(new Error("the caller disconnected"));
    });
    try {
      const submitted = await client.submit(
        { encrypted_input: keyRing.encrypt(JSON.stringify(poolRequest)) },
        { signal: gone.signal },
      );
      jobId = submitted.id;
      // Refused for overload: OpenAI's clients retry on 429/503 with Retry-After themselves.
      if (submitted.retryAfterSeconds !== undefined) {
        throw jobFailure(
          submitted.id,
          submitted.status,
          submitted.error,
          submitted.retryAfterSeconds,
        );
      }
    } catch (error) {
      if (gone.signal.aborted) return;
      const failure = failureOf(error);
      const { status, body: answer } = openAiError(failure.code, failure.message);
      const retryAfter = failure.retryAfterSeconds;
      sendJson(
        response,
        status,
        answer,
        retryAfter === undefined ? {} : { "retry-after": retryAfter },
      );
      return;
    }
    const submittedId = jobId;
    const cancelOnLeave = () => void client.cancel(submittedId).catch(() => {});
    gone.signal.addEventListener("abort", cancelOnLeave, { once: true });
    await sendOpenAiAnswer(response, {
      shape,
      jobId: submittedId,
      model,
      chunks: client.chunks(submittedId, { signal: gone.signal }),
      failureOf,
    });
  }

  async #models(): Promise<readonly string[]> {
    if (this.#options.models !== undefined) return this.#options.models;
    try {
      return (await this.#options.client.servedModels()) ?? [defaultModelName];
    } catch {
      // RunPod's hosted API does not list models: the endpoint's only model, by its stand-in.
      return [defaultModelName];
    }
  }

  async #readJson(
    request: http.IncomingMessage,
    response: http.ServerResponse,
  ): Promise<unknown | undefined> {
    const parts: Buffer[] = [];
    let bytes = 0;
    for await (const part of request) {
      bytes += (part as Buffer).length;
      if (bytes > this.#maxBodyBytes) {
        const { status, body } = openAiError(
          "REQUEST_TOO_LARGE",
          `the request body is larger than ${this.#maxBodyBytes} bytes`,
        );
        sendJson(response, status, body);
        request.destroy();
        return undefined;
      }
      parts.push(part as Buffer);
    }
    try {
      return JSON.parse(Buffer.concat(parts).toString("utf8"));
    } catch {
      const { status, body } = openAiError(
        new InvalidRequestError("").code,
        "the request body is not valid JSON",
      );
      sendJson(response, status, body);
      return undefined;
    }
  }
}

/** What a failure of the pool or of the way to it means to an OpenAI caller. */
function failureOf(error: unknown): AnswerFailure {
  if (error instanceof JobFailedError) {
    return { code: error.code, message: error.detail, retryAfterSeconds: error.retryAfterSeconds };
  }
  if (error instanceof ConnectionError) {
    if (error.status === 401 || error.status === 403) {
      return {
        code: "UNAUTHORIZED",
        message: `the pool refused the proxy's API key (${error.message})`,
      };
    }
    return { code: "UPSTREAM", message: `the pool could not be reached: ${error.message}` };
  }
  return { code: "UPSTREAM", message: "the pool could not be reached" };
}
