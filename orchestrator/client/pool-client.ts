import type { z } from "zod";
import type { JobInput, StreamChunk } from "../../shared/protocol/index.js";
import {
  runResponseSchema,
  type StatusResponse,
  statusResponseSchema,
  streamChunkSchema,
  streamResponseSchema,
  terminalStatuses,
} from "./api-schemas.js";
import { ConnectionError } from "./client-errors.js";
import { jobFailure } from "./job-error.js";
import { serverText } from "./server-text.js";

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
}

/** A job that ended `COMPLETED`, with every chunk of its output. */
export interface FinishedJob {
  id: string;
  chunks: StreamChunk[];
}

/** Polls of `/stream` and `/status` are retried this often on a network error, 429 or 5xx. */
const retryDelaysMs = [500, 1000, 2000];
const statusPollMs = 500;

/**
 * A client of the RunPod API shape, the same for the local API and hosted RunPod: submit an
 * encrypted job, read its chunks as they come, cancel it. Reusable by tests and benchmarks.
 * Errors are {@link ConnectionError} (no or bad HTTP answer) and `JobFailedError` (the job ended
 * `FAILED`, `TIMED_OUT` or `CANCELLED`); neither ever holds the request body.
 */
export class PoolClient {
  readonly baseUrl: string;
  readonly #apiKey: string | undefined;
  readonly #streamWaitMs: number;
  readonly #idlePollMs: number;
  readonly #requestTimeoutMs: number;

  constructor(options: PoolClientOptions) {
    this.baseUrl = normalizeBaseUrl(options.baseUrl);
    this.#apiKey = options.apiKey;
    this.#streamWaitMs = options.streamWaitMs ?? 10_000;
    this.#idlePollMs = options.idlePollMs ?? 250;
    this.#requestTimeoutMs = options.requestTimeoutMs ?? 30_000;
  }

  /** `POST /run`: queues a job. A request the pool refuses still gets an id (its job ends `FAILED`). */
  async submit(input: JobInput, options: CallOptions = {}): Promise<SubmittedJob> {
    const response = await this.#call("POST", "/run", runResponseSchema, {
      body: { input },
      signal: options.signal,
    });
    return { id: response.id, status: response.status };
  }

  /**
   * Polls `/stream/{id}` and yields the job's chunks as they arrive, in the order received, until
   * the job is terminal and the stream drained. Returns when it `COMPLETED`; throws a
   * `JobFailedError` when it ended otherwise, after yielding the chunks it produced.
   */
  async *chunks(jobId: string, options: CallOptions = {}): AsyncGenerator<StreamChunk, void> {
    const path = `/stream/${encodeURIComponent(jobId)}`;
    let previousStatus: string | undefined;
    for (;;) {
      const startedAt = performance.now();
      const response = await this.#call("GET", path, streamResponseSchema, {
        query: { wait: String(this.#streamWaitMs) },
        extraTimeoutMs: this.#streamWaitMs,
        retry: true,
        signal: options.signal,
      });
      const items = response.stream ?? [];
      for (const item of items) yield this.#chunk(item.output, path);
      if (items.length > 0) {
        previousStatus = response.status;
        continue;
      }
      if (terminalStatuses.has(response.status)) {
        if (response.status === "COMPLETED") return;
        const error = response.error ?? (await this.status(jobId, options)).error;
        throw jobFailure(jobId, response.status, error);
      }
      // Nothing new. The local API waited for news already; the hosted one answers at once.
      if (response.status === previousStatus) {
        await sleep(this.#idlePollMs - (performance.now() - startedAt), options.signal);
      }
      previousStatus = response.status;
    }
  }

  /**
   * `POST /runsync`: runs a job and resolves when it ends, polling `/status/{id}` if it outlasts
   * the server's wait. Resolves with its chunks when it `COMPLETED`; else throws `JobFailedError`.
   */
  async runSync(input: JobInput, options: RunSyncOptions = {}): Promise<FinishedJob> {
    const waitMs = options.waitMs ?? 90_000;
    let state = await this.#call("POST", "/runsync", statusResponseSchema, {
      body: { input },
      query: { wait: String(waitMs) },
      extraTimeoutMs: waitMs,
      signal: options.signal,
    });
    options.onJobId?.(state.id);
    while (!terminalStatuses.has(state.status)) {
      await sleep(statusPollMs, options.signal);
      state = await this.status(state.id, options);
    }
    return this.#finished(state);
  }

  /** `GET /status/{id}`: the job's state now. */
  status(jobId: string, options: CallOptions = {}): Promise<StatusResponse> {
    return this.#call("GET", `/status/${encodeURIComponent(jobId)}`, statusResponseSchema, {
      retry: true,
      signal: options.signal,
    });
  }

  /** `POST /cancel/{id}`: cancels the job; resolves with its status after the call. */
  async cancel(jobId: string, options: CallOptions = {}): Promise<string> {
    const path = `/cancel/${encodeURIComponent(jobId)}`;
    const response = await this.#call("POST", path, streamResponseSchema.pick({ status: true }), {
      signal: options.signal,
    });
    return response.status;
  }

  #finished(state: StatusResponse): FinishedJob {
    if (state.status !== "COMPLETED") throw jobFailure(state.id, state.status, state.error);
    const path = `/status/${encodeURIComponent(state.id)}`;
    if (state.output === undefined) return { id: state.id, chunks: [] };
    if (!Array.isArray(state.output)) {
      throw new ConnectionError(
        this.#display(path),
        200,
        "the job's output is not a list of chunks",
      );
    }
    return { id: state.id, chunks: state.output.map((output) => this.#chunk(output, path)) };
  }

  #chunk(output: unknown, path: string): StreamChunk {
    const parsed = streamChunkSchema.safeParse(output);
    if (parsed.success) return parsed.data;
    throw new ConnectionError(
      this.#display(path),
      200,
      'a stream chunk is neither {"seq", "delta"} nor a final {"seq", "done": true, ...} chunk',
    );
  }

  async #call<T>(
    method: "GET" | "POST",
    path: string,
    schema: z.ZodType<T>,
    options: {
      body?: unknown;
      query?: Record<string, string>;
      extraTimeoutMs?: number;
      retry?: boolean;
      signal: AbortSignal | undefined;
    },
  ): Promise<T> {
    const url = new URL(this.baseUrl + path);
    for (const [name, value] of Object.entries(options.query ?? {})) {
      url.searchParams.set(name, value);
    }
    const display = this.#display(path);
    const headers: Record<string, string> = { accept: "application/json" };
    if (this.#apiKey !== undefined) headers.authorization = `Bearer ${this.#apiKey}`;
    if (options.body !== undefined) headers["content-type"] = "application/json";
    const body = options.body === undefined ? undefined : JSON.stringify(options.body);
    const timeoutMs = this.#requestTimeoutMs + (options.extraTimeoutMs ?? 0);

    for (let attempt = 0; ; attempt += 1) {
      const retryDelay = options.retry ? retryDelaysMs[attempt] : undefined;
      const signals = [AbortSignal.timeout(timeoutMs)];
      if (options.signal !== undefined) signals.push(options.signal);
      let response: Response;
      try {
        response = await fetch(url, { method, headers, body, signal: AbortSignal.any(signals) });
      } catch (error) {
        if (options.signal?.aborted) throw options.signal.reason;
        const failure = networkFailure(display, error, timeoutMs);
        if (retryDelay === undefined) throw failure;
        await sleep(retryDelay, options.signal);
        continue;
      }
      const text = await readText(response, options.signal);
      if (!response.ok) {
        const retryable = response.status === 429 || response.status >= 500;
        if (retryable && retryDelay !== undefined) {
          await sleep(retryDelay, options.signal);
          continue;
        }
        throw new ConnectionError(display, response.status, errorDetail(text, response));
      }
      let json: unknown;
      try {
        json = JSON.parse(text);
      } catch {
        throw new ConnectionError(display, response.status, "the answer is not JSON");
      }
      const parsed = schema.safeParse(json);
      if (!parsed.success) {
        throw new ConnectionError(
          display,
          response.status,
          "the answer is not a RunPod API answer",
        );
      }
      return parsed.data;
    }
  }

  /** The URL of a route as shown in messages: no query, no credentials. */
  #display(path: string): string {
    return this.baseUrl + path;
  }
}

/**
 * Checks a base URL and drops its trailing slashes. Throws a `TypeError` saying what is wrong for
 * anything but a plain `http(s)://host[:port][/path]` URL: credentials would be printed in
 * messages (and fetch refuses them), and a query or fragment cannot take a route after it.
 */
export function normalizeBaseUrl(text: string): string {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new TypeError("the URL is not an absolute URL such as http://127.0.0.1:8000");
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    throw new TypeError("the URL must start with http:// or https://");
  }
  if (url.username !== "" || url.password !== "") {
    throw new TypeError("the URL must not hold credentials; use --api-key or RUNPOD_API_KEY");
  }
  if (url.search !== "" || url.hash !== "") {
    throw new TypeError("the URL must not have a query or fragment");
  }
  return url.href.replace(/\/+$/, "");
}

async function readText(response: Response, signal: AbortSignal | undefined): Promise<string> {
  try {
    return await response.text();
  } catch (error) {
    if (signal?.aborted) throw signal.reason;
    throw error;
  }
}

function networkFailure(display: string, error: unknown, timeoutMs: number): ConnectionError {
  if (error instanceof Error && error.name === "TimeoutError") {
    return new ConnectionError(display, undefined, `no answer within ${timeoutMs} ms`, {
      cause: error,
    });
  }
  // undici says "fetch failed"; the reason (ECONNREFUSED, ENOTFOUND, "bad port") is the cause.
  const cause = error instanceof Error ? error.cause : undefined;
  const code = (cause as { code?: unknown } | undefined)?.code;
  const reason =
    typeof code === "string"
      ? code
      : serverText(
          cause instanceof Error ? cause.message : error instanceof Error ? error.message : "",
          200,
        ) || "unknown error";
  return new ConnectionError(display, undefined, `cannot connect (${reason})`, { cause: error });
}

/** The server's own words for an HTTP error: its JSON `error` text, else the status text. */
function errorDetail(text: string, response: Response): string {
  try {
    const parsed: unknown = JSON.parse(text);
    if (typeof parsed === "object" && parsed !== null && "error" in parsed) {
      const { error } = parsed;
      if (typeof error === "string") return serverText(error, 300);
    }
  } catch {
    // Not JSON (a proxy's HTML page, say): the status text says enough.
  }
  return response.statusText || "request refused";
}

/** Waits `ms` (nothing when ≤ 0); rejects with the signal's reason when it aborts first. */
function sleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
  if (signal?.aborted) return Promise.reject(signal.reason);
  if (ms <= 0) return Promise.resolve();
  return new Promise((resolve, reject) => {
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal?.reason);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}
