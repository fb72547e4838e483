import { clientTokenHeader, clientTokenOf, type KeyRing } from "../../shared/crypto/index.js";
import { sleep } from "../../shared/process/sleep.js";
import {
  decryptChunk,
  encryptedChunkSchema,
  isFinalChunk,
  type JobInput,
  type StreamChunk,
  streamChunkSchema,
} from "../../shared/protocol/index.js";
import {
  healthResponseSchema,
  runResponseSchema,
  type StatusResponse,
  type StreamResponse,
  statusResponseSchema,
  streamResponseSchema,
  terminalStatuses,
} from "./api-schemas.js";
import { normalizeBaseUrl } from "./base-url.js";
import { type BusyRetryPolicy, type BusyWait, defaultBusyRetries } from "./busy-retry.js";
import { ConnectionError } from "./client-errors.js";
import { jobFailure } from "./job-error.js";
import { JsonHttp } from "./json-http.js";
import { longPollStream } from "./long-poll-stream.js";

export interface PoolClientOptions {
  /**
   * Base URL of the API, without a trailing route: `http://127.0.0.1:8000` for a local stack,
   * `https://api.runpod.ai/v2/<endpoint id>` for a RunPod endpoint.
   */
  baseUrl: string;
  /** Sent as `Authorization: Bearer <apiKey>` on every call. Default: no header. */
  apiKey?: string | undefined;
  /**
   * How long one `/stream` poll may wait server-side for news, in ms (the local API's `?wait=`,
   * at most 60000; the hosted API answers at once whatever it is given). Default 10000.
   */
  streamWaitMs?: number;
  /** Least time between the starts of two `/stream` polls that brought no news, in ms. Default 250. */
  idlePollMs?: number;
  /** Time allowed for one HTTP call on top of any server-side wait, in ms. Default 30000. */
  requestTimeoutMs?: number;
  /**
   * Opens encrypted chunks (`{"seq", "encrypted"}`, for jobs that asked for `encrypt_output` or a
   * pool with `ENCRYPT_OUTPUT=always`): they are yielded decrypted. Without it such a chunk is an
   * error.
   */
  keyRing?: KeyRing | undefined;
  /**
   * The client's name in the pool's `CLIENT_KEYS_FILE` (`keyRing` is then that client's own key):
   * put in every job's input as `client`, and with it the client's `X-Client-Token` is sent on
   * every call, without which the pool does not show the client's jobs. Default: the anonymous
   * client (`ENCRYPTION_KEY`).
   */
  client?: string | undefined;
  /**
   * Times `/run` and `/runsync` send a job again that the pool refused for overload (HTTP 429 or
   * 503), each after the answer's `Retry-After` (nothing was queued). Default 3; 0 for none.
   */
  busyRetries?: number;
  /** Told before each such wait (the CLI shows it on stderr). */
  onBusy?: (wait: BusyWait) => void;
}

export interface CallOptions {
  /** Aborts the call; it then rejects with the signal's reason. */
  signal?: AbortSignal | undefined;
}

export interface RunSyncOptions extends CallOptions {
  /** How long `/runsync` may wait server-side before answering "not done yet", in ms. Default 90000. */
  waitMs?: number;
  /** Called with the job's id as soon as it is known, before the job has ended. */
  onJobId?: (jobId: string) => void;
}

/** A job the pool accepted (`/run`): its id, and its status then. */
export interface SubmittedJob {
  id: string;
  status: string;
  /** A refused job's error (`FAILED`): JSON text `{"code", "message"}`. */
  error?: unknown;
  /** A job refused for overload, once the retries were spent: the pool's `Retry-After`, in s. */
  retryAfterSeconds?: number;
}

/** A job that ended `COMPLETED`, with every chunk of its output. */
export interface FinishedJob {
  id: string;
  chunks: StreamChunk[];
}

const statusPollMs = 500;

/**
 * A client of the RunPod API shape, the same for the local API and hosted RunPod: submit an
 * encrypted job, read its chunks as they come, cancel it. Reusable by tests and benchmarks.
 * Errors are {@link ConnectionError} (no or bad HTTP answer) and `JobFailedError` (the job ended
 * `FAILED`, `TIMED_OUT` or `CANCELLED`); neither ever holds the request body.
 */
export class PoolClient {
  readonly #http: JsonHttp;
  readonly #streamWaitMs: number;
  readonly #idlePollMs: number;
  readonly #keyRing: KeyRing | undefined;
  readonly #client: string | undefined;
  readonly #busy: BusyRetryPolicy;

  /** @throws TypeError when `baseUrl` is not a plain http(s) URL (see {@link normalizeBaseUrl}). */
  constructor(options: PoolClientOptions) {
    const baseUrl = normalizeBaseUrl(options.baseUrl);
    this.#client = options.client;
    if (options.client !== undefined && options.keyRing === undefined) {
      throw new TypeError("a PoolClient with a client name needs that client's keyRing");
    }
    const ownerHeaders: Record<string, string> =
      options.client === undefined || options.keyRing === undefined
        ? {}
        : { [clientTokenHeader]: clientTokenOf(options.keyRing.primary) };
    this.#http = new JsonHttp(
      baseUrl,
      options.apiKey,
      options.requestTimeoutMs ?? 30_000,
      ownerHeaders,
    );
    this.#streamWaitMs = options.streamWaitMs ?? 10_000;
    this.#idlePollMs = options.idlePollMs ?? 250;
    this.#keyRing = options.keyRing;
    this.#busy = { retries: options.busyRetries ?? defaultBusyRetries, onWait: options.onBusy };
  }

  /** The base URL, without a trailing slash. */
  get baseUrl(): string {
    return this.#http.baseUrl;
  }

  /** `POST /run`: queues a job. A request the pool refuses still gets an id (its job ends `FAILED`). */
  async submit(input: JobInput, options: CallOptions = {}): Promise<SubmittedJob> {
    const { data, retryAfterSeconds } = await this.#http.answer("POST", "/run", runResponseSchema, {
      body: { input: this.#named(input) },
      busy: this.#busy,
      signal: options.signal,
    });
    return {
      id: data.id,
      status: data.status,
      ...(data.error === undefined ? {} : { error: data.error }),
      ...(retryAfterSeconds === undefined ? {} : { retryAfterSeconds }),
    };
  }

  /**
   * Polls `/stream/{id}` and yields the job's chunks as they arrive, in the order received, until
   * the job is terminal and the stream drained. Returns when it `COMPLETED`; throws a
   * `JobFailedError` when it ended otherwise, after yielding the chunks it produced.
   */
  async *chunks(jobId: string, options: CallOptions = {}): AsyncGenerator<StreamChunk, void> {
    const path = `/stream/${encodeURIComponent(jobId)}`;
    const poll = () =>
      this.#http.call("GET", path, streamResponseSchema, {
        query: { wait: String(this.#streamWaitMs) },
        extraTimeoutMs: this.#streamWaitMs,
        retry: true,
        signal: options.signal,
      });
    // The local API waits for news already; the hosted one answers at once, so idle polls are spaced.
    const pages = longPollStream(poll, { idlePollMs: this.#idlePollMs, signal: options.signal });
    let last: StreamResponse | undefined;
    for await (const page of pages) {
      last = page;
      let sawFinal = false;
      for (const item of page.stream ?? []) {
        // A RunPod worker posts the chunks produced since its previous post as one list.
        const outputs = Array.isArray(item.output) ? item.output : [item.output];
        for (const output of outputs) {
          const chunk = this.#chunk(output, path);
          sawFinal = isFinalChunk(chunk);
          yield chunk;
        }
      }
      // The final chunk is the last by contract: no need for one more (empty) poll.
      if (sawFinal && page.status === "COMPLETED") return;
    }
    // The loop ended on a terminal page that streamed nothing.
    if (last === undefined || last.status === "COMPLETED") return;
    const error = last.error ?? (await this.status(jobId, options)).error;
    throw jobFailure(jobId, last.status, error);
  }

  /**
   * `POST /runsync`: runs a job and resolves when it ends, polling `/status/{id}` if it outlasts
   * the server's wait. Resolves with its chunks when it `COMPLETED`; else throws `JobFailedError`.
   */
  async runSync(input: JobInput, options: RunSyncOptions = {}): Promise<FinishedJob> {
    const waitMs = options.waitMs ?? 90_000;
    const answer = await this.#http.answer("POST", "/runsync", statusResponseSchema, {
      body: { input: this.#named(input) },
      query: { wait: String(waitMs) },
      extraTimeoutMs: waitMs,
      busy: this.#busy,
      signal: options.signal,
    });
    let state = answer.data;
    options.onJobId?.(state.id);
    if (answer.retryAfterSeconds !== undefined && state.status === "FAILED") {
      throw jobFailure(state.id, state.status, state.error, answer.retryAfterSeconds);
    }
    while (!terminalStatuses.has(state.status)) {
      await sleep(statusPollMs, { signal: options.signal, onAbort: "reject" });
      state = await this.status(state.id, options);
    }
    return this.#finished(state);
  }

  /** `GET /status/{id}`: the job's state now. */
  status(jobId: string, options: CallOptions = {}): Promise<StatusResponse> {
    return this.#http.call("GET", `/status/${encodeURIComponent(jobId)}`, statusResponseSchema, {
      retry: true,
      signal: options.signal,
    });
  }

  /** `POST /cancel/{id}`: cancels the job; resolves with its status after the call. */
  async cancel(jobId: string, options: CallOptions = {}): Promise<string> {
    const path = `/cancel/${encodeURIComponent(jobId)}`;
    const response = await this.#http.call(
      "POST",
      path,
      streamResponseSchema.pick({ status: true }),
      {
        signal: options.signal,
      },
    );
    return response.status;
  }

  /**
   * The names of the models the pool serves, from `GET /health` (the local API lists them);
   * `undefined` when it does not say (RunPod's hosted `/health` does not).
   */
  async servedModels(options: CallOptions = {}): Promise<string[] | undefined> {
    const health = await this.#http.call("GET", "/health", healthResponseSchema, {
      retry: true,
      signal: options.signal,
    });
    return health.models?.map((model) => model.name);
  }

  /** The input with this client's name (an input naming a client already is left as it is). */
  #named(input: JobInput): JobInput {
    if (this.#client === undefined || input.client !== undefined) return input;
    return { ...input, client: this.#client };
  }

  #finished(state: StatusResponse): FinishedJob {
    if (state.status !== "COMPLETED") throw jobFailure(state.id, state.status, state.error);
    const path = `/status/${encodeURIComponent(state.id)}`;
    if (state.output === undefined) return { id: state.id, chunks: [] };
    if (!Array.isArray(state.output)) {
      throw new ConnectionError(
        this.#http.display(path),
        200,
        "the job's output is not a list of chunks",
      );
    }
    return { id: state.id, chunks: state.output.map((output) => this.#chunk(output, path)) };
  }

  #chunk(output: unknown, path: string): StreamChunk {
    const encrypted = encryptedChunkSchema.safeParse(output);
    if (encrypted.success) {
      if (this.#keyRing === undefined) {
        throw new ConnectionError(
          this.#http.display(path),
          200,
          "the chunks are encrypted, and this client was given no key to open them",
        );
      }
      const opened = decryptChunk(this.#keyRing, encrypted.data);
      if (opened !== undefined) return opened;
      throw new ConnectionError(
        this.#http.display(path),
        200,
        `encrypted chunk seq ${encrypted.data.seq} could not be opened with the key (another key, tampered, or moved)`,
      );
    }
    const parsed = streamChunkSchema.safeParse(output);
    if (parsed.success) return parsed.data;
    throw new ConnectionError(
      this.#http.display(path),
      200,
      'a stream chunk is neither {"seq", "delta"} nor a final {"seq", "done": true, ...} chunk',
    );
  }
}
