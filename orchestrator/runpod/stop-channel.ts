import { messageOf } from "../../shared/errors/index.js";
import type { Logger } from "../../shared/log.js";
import { type Backoff, createBackoff } from "../../shared/process/backoff.js";
import { sleep } from "../../shared/process/sleep.js";
import type { PlatformHttp } from "./platform-http.js";

export interface StopChannelOptions {
  http: PlatformHttp;
  /** The `/job-stop/` long-poll URL. */
  url: string;
  /** Called with the ids the platform wants stopped. */
  onStop: (jobIds: string[]) => void;
  log: Logger;
}

/** The long poll's client-side timeout: the platform answers well before. */
const pollTimeoutMs = 90_000;

/**
 * Long-polls the platform's `/job-stop/` channel: `200` `{"jobsToStop": [...]}` stops those jobs,
 * `204` means none, `429` waits 5 s, other errors back off. A `404` means this platform has no
 * stop channel: polling ends quietly.
 */
export class StopChannel {
  readonly #options: StopChannelOptions;
  readonly #closed = new AbortController();
  readonly #backoff: Backoff = createBackoff();
  #loop: Promise<void> | undefined;

  constructor(options: StopChannelOptions) {
    this.#options = options;
  }

  start(): void {
    this.#loop ??= this.#run();
  }

  async #run(): Promise<void> {
    const { http, url, onStop, log } = this.#options;
    const signal = this.#closed.signal;
    while (!signal.aborted) {
      let status: number;
      let text: string;
      try {
        ({ status, text } = await http.get(url, pollTimeoutMs, signal));
      } catch (error) {
        if (signal.aborted) return;
        if (error instanceof Error && error.name === "TimeoutError") continue;
        log.warn("the stop channel failed", {
          error: messageOf(error),
        });
        await sleep(this.#backoff.next(), { signal, onAbort: "resolve" });
        continue;
      }
      if (status === 404) {
        log.info("the platform has no job-stop channel: not polling it");
        return;
      }
      if (status === 429) {
        await sleep(5000, { signal, onAbort: "resolve" });
        continue;
      }
      if (status === 204 || status === 400) {
        this.#backoff.reset();
        continue;
      }
      if (status !== 200) {
        log.warn("the stop channel answered with an error", { status });
        await sleep(this.#backoff.next(), { signal, onAbort: "resolve" });
        continue;
      }
      this.#backoff.reset();
      const ids = parseJobsToStop(text);
      if (ids === undefined) log.warn("ignored a malformed job-stop answer");
      else if (ids.length > 0) onStop(ids);
    }
  }

  async close(): Promise<void> {
    this.#closed.abort();
    await this.#loop;
  }
}

function parseJobsToStop(text: string): string[] | undefined {
  try {
    const body: unknown = JSON.parse(text);
    if (typeof body !== "object" || body === null || !("jobsToStop" in body)) return undefined;
    const list = body.jobsToStop;
    if (!Array.isArray(list)) return list === null ? [] : undefined;
    return list.filter((id): id is string => typeof id === "string");
  } catch {
    return undefined;
  }
}
