import { messageOf } from "../../shared/errors/index.js";
import type { Logger } from "../../shared/log.js";
import { callSignal } from "../../shared/process/call-signal.js";
import { sleep } from "../../shared/process/sleep.js";

export interface PlatformResponse {
  status: number;
  text: string;
}

/** Delays before the 2nd and 3rd attempt of a post, as runpod-python's result transmitter. */
export const postRetryDelaysMs: readonly number[] = [2000, 3000];

/**
 * HTTP to the RunPod platform: every call carries `Authorization: <RUNPOD_AI_API_KEY>` (the raw
 * key, no `Bearer`) and a timeout. Bodies are JSON text sent as runpod-python sends them.
 */
export class PlatformHttp {
  readonly #apiKey: string | undefined;
  readonly #log: Logger;

  constructor(apiKey: string | undefined, log: Logger) {
    this.#apiKey = apiKey;
    this.#log = log;
  }

  /** One GET; rejects on a network error, a timeout or an abort. */
  async get(url: string, timeoutMs: number, signal?: AbortSignal): Promise<PlatformResponse> {
    return this.#call(url, { method: "GET" }, timeoutMs, signal);
  }

  /**
   * POSTs `body` (JSON) about a job, retrying on a network error, 429 or 5xx (3 attempts, 2 s
   * and 3 s apart). Resolves with the last answer's status, or rejects after the last attempt
   * failed at the network level. `signal` stops further attempts.
   */
  async post(
    url: string,
    body: unknown,
    jobId: string,
    options: { timeoutMs?: number; signal?: AbortSignal; what: string },
  ): Promise<number> {
    const text = JSON.stringify(body);
    const init: RequestInit = {
      method: "POST",
      body: text,
      // What runpod-python sends (sic): the platform is known to accept it.
      headers: {
        "content-type": "application/x-www-form-urlencoded",
        charset: "utf-8",
        "x-request-id": jobId,
      },
    };
    for (let attempt = 0; ; attempt += 1) {
      const delay = postRetryDelaysMs[attempt];
      try {
        const response = await this.#call(url, init, options.timeoutMs ?? 30_000, options.signal);
        const retryable = response.status === 429 || response.status >= 500;
        if (!retryable || delay === undefined) {
          if (response.status >= 400) {
            this.#log.warn("the platform refused a post", {
              jobId,
              what: options.what,
              status: response.status,
            });
          }
          return response.status;
        }
        this.#log.warn("the platform answered a post with an error: retrying", {
          jobId,
          what: options.what,
          status: response.status,
          retryInMs: delay,
        });
      } catch (error) {
        if (options.signal?.aborted || delay === undefined) throw error;
        this.#log.warn("a post failed: retrying", {
          jobId,
          what: options.what,
          error: messageOf(error),
          retryInMs: delay,
        });
      }
      await sleep(delay, { signal: options.signal, onAbort: "resolve" });
    }
  }

  async #call(
    url: string,
    init: RequestInit,
    timeoutMs: number,
    signal: AbortSignal | undefined,
  ): Promise<PlatformResponse> {
    const call = callSignal(timeoutMs, signal);
    try {
      const headers = new Headers(init.headers);
      if (this.#apiKey !== undefined) headers.set("authorization", this.#apiKey);
      const response = await fetch(url, { ...init, headers, signal: call.signal });
      return { status: response.status, text: await response.text() };
    } catch (error) {
      // fetch rejects with the abort reason: our TimeoutError, or the caller's reason.
      throw call.signal.aborted ? call.signal.reason : error;
    } finally {
      call.done();
    }
  }
}
