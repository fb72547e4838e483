import type { z } from "zod";
import { callSignal } from "../../shared/process/call-signal.js";
import { sleep } from "../../shared/process/sleep.js";
import {
  type BusyRetryPolicy,
  fallbackWaitSeconds,
  isBusyStatus,
  parseRetryAfter,
} from "./busy-retry.js";
import { ConnectionError } from "./client-errors.js";
import { serverText } from "./server-text.js";

export interface JsonCallOptions {
  /** Sent as JSON. */
  body?: unknown;
  query?: Record<string, string>;
  /** Added to the call's timeout: a server-side wait the call asked for, in ms. */
  extraTimeoutMs?: number;
  /** Whether to retry on a network error, 429 or 5xx (for reads only). */
  retry?: boolean;
  /**
   * For a submit: send it again on 429/503 after the answer's `Retry-After`, this many times;
   * once they are spent, a refusal whose body is `schema`'s (RunPod's FAILED job) is returned.
   */
  busy?: BusyRetryPolicy;
  signal: AbortSignal | undefined;
}

/** An answer, with the `Retry-After` (seconds) of a refusal returned under {@link JsonCallOptions.busy}. */
export interface JsonAnswer<T> {
  data: T;
  retryAfterSeconds?: number;
}

/** Delays between attempts of a call that may be retried. */
const retryDelaysMs = [500, 1000, 2000];

/**
 * JSON over HTTP to one base URL, with the API key, a timeout, and errors as
 * {@link ConnectionError}s naming the URL and the status, never the request body.
 */
export class JsonHttp {
  readonly baseUrl: string;
  /** Private, so that logging or inspecting this object cannot show it. */
  readonly #apiKey: string | undefined;
  readonly #timeoutMs: number;
  /** Sent on every call (the client's `X-Client-Token`). */
  readonly #headers: Readonly<Record<string, string>>;

  /**
   * @param baseUrl Checked and without a trailing slash (see `normalizeBaseUrl`).
   * @param apiKey Sent as `Authorization: Bearer <apiKey>`; none when `undefined`.
   * @param timeoutMs Time allowed for one call, in ms.
   * @param headers More headers sent on every call.
   */
  constructor(
    baseUrl: string,
    apiKey: string | undefined,
    timeoutMs: number,
    headers: Readonly<Record<string, string>> = {},
  ) {
    this.baseUrl = baseUrl;
    this.#apiKey = apiKey;
    this.#timeoutMs = timeoutMs;
    this.#headers = headers;
  }

  /**
   * Calls a route and checks the JSON answer against `schema`. Rejects with the signal's reason
   * when `options.signal` aborts.
   */
  async call<T>(
    method: "GET" | "POST",
    path: string,
    schema: z.ZodType<T>,
    options: JsonCallOptions,
  ): Promise<T> {
    return (await this.answer(method, path, schema, options)).data;
  }

  /** {@link call}, also returning the `Retry-After` of a refusal taken under `options.busy`. */
  async answer<T>(
    method: "GET" | "POST",
    path: string,
    schema: z.ZodType<T>,
    options: JsonCallOptions,
  ): Promise<JsonAnswer<T>> {
    const url = new URL(this.baseUrl + path);
    for (const [name, value] of Object.entries(options.query ?? {})) {
      url.searchParams.set(name, value);
    }
    const display = this.display(path);
    const headers: Record<string, string> = { ...this.#headers, accept: "application/json" };
    if (this.#apiKey !== undefined) headers.authorization = `Bearer ${this.#apiKey}`;
    if (options.body !== undefined) headers["content-type"] = "application/json";
    const body = options.body === undefined ? undefined : JSON.stringify(options.body);
    const timeoutMs = this.#timeoutMs + (options.extraTimeoutMs ?? 0);

    let busyAttempt = 0;
    for (let attempt = 0; ; attempt += 1) {
      const retryDelay = options.retry ? retryDelaysMs[attempt] : undefined;
      const call = callSignal(timeoutMs, options.signal);
      let response: Response;
      let text: string;
      try {
        response = await fetch(url, { method, headers, body, signal: call.signal });
        text = await readText(response, options.signal);
      } catch (error) {
        if (options.signal?.aborted) throw options.signal.reason;
        const failure = networkFailure(display, error, timeoutMs);
        if (retryDelay === undefined) throw failure;
        await sleep(retryDelay, { signal: options.signal, onAbort: "reject" });
        continue;
      } finally {
        call.done();
      }
      let retryAfterSeconds: number | undefined;
      if (options.busy !== undefined && isBusyStatus(response.status)) {
        const { retries, onWait } = options.busy;
        retryAfterSeconds = parseRetryAfter(response.headers.get("retry-after"));
        if (busyAttempt < retries) {
          busyAttempt += 1;
          const seconds = retryAfterSeconds ?? fallbackWaitSeconds(busyAttempt);
          onWait?.({
            status: response.status,
            code: errorCode(text),
            seconds,
            attempt: busyAttempt,
            retries,
          });
          await sleep(seconds * 1000, { signal: options.signal, onAbort: "reject" });
          attempt -= 1;
          continue;
        }
        // Retries spent: a refused job is answered like any failed one, if the body says so.
        const refused = schema.safeParse(parseJson(text));
        if (refused.success) {
          return retryAfterSeconds === undefined
            ? { data: refused.data }
            : { data: refused.data, retryAfterSeconds };
        }
      }
      if (!response.ok) {
        const retryable = response.status === 429 || response.status >= 500;
        if (retryable && retryDelay !== undefined) {
          await sleep(retryDelay, { signal: options.signal, onAbort: "reject" });
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
      return { data: parsed.data };
    }
  }

  /** The URL of a route as shown in messages: no query, no credentials. */
  display(path: string): string {
    return this.baseUrl + path;
  }
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

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

/** The pool's error code in a RunPod-shaped refusal (`{"error": "{\"code\": ...}"}`). */
function errorCode(text: string): string | undefined {
  const body = parseJson(text) as { error?: unknown } | undefined;
  if (typeof body?.error !== "string") return undefined;
  const error = parseJson(body.error) as { code?: unknown } | undefined;
  const code = error?.code;
  return typeof code === "string" && /^[A-Z][A-Z0-9_]{0,63}$/.test(code) ? code : undefined;
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
