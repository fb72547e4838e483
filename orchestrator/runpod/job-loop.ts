import { messageOf } from "../../shared/errors/index.js";
import type { Logger } from "../../shared/log.js";
import { aborted } from "../../shared/process/aborted.js";
import { createBackoff } from "../../shared/process/backoff.js";
import { sleep } from "../../shared/process/sleep.js";
import type { PlatformHttp } from "./platform-http.js";
import { type ParsedTake, parseTakeAnswer } from "./take-answer.js";
import type { WebhookUrls } from "./webhook-urls.js";

export interface JobLoopOptions {
  http: PlatformHttp;
  urls: WebhookUrls;
  /** Most jobs held at once (taken and not yet posted). */
  concurrency: number;
  /** How many jobs are held now. */
  held: () => number;
  /** Resolves when a held job is let go (a slot may be free). */
  slotFreed: () => Promise<void>;
  /** Resolves when jobs can run (the gpu-workers serve every model); no take before. */
  ready: (signal: AbortSignal) => Promise<void>;
  /** Takes what a job-take answer gave. */
  onTaken: (take: ParsedTake) => void;
  log: Logger;
  /** Client-side timeout of one long poll, in ms; re-polled at once when it passes. Default 90000. */
  takeTimeoutMs?: number;
}
/** Least time between two job-take calls that brought nothing (a platform answering 204 at once). */
const emptyPollSpacingMs = 100;
/** What the protocol asks after a 429. */
const tooManyRequestsWaitMs = 5000;

/**
 * The RunPod job loop (protocol §3): while slots are free, long-poll the job-take URL for that
 * many jobs (batch take when more than one), with `job_in_progress` telling the platform whether
 * this worker holds any.
 * `204`/`400` mean no job; `429` waits 5 s; other errors back off (1 s, doubling to 30 s).
 * `close()` aborts the poll in flight: no take starts after it.
 */
export class JobLoop {
  readonly #options: JobLoopOptions;
  readonly #closed = new AbortController();
  readonly #backoff = createBackoff();
  #loop: Promise<void> | undefined;
  /** Job-take calls made, for the log. */
  takes = 0;

  constructor(options: JobLoopOptions) {
    this.#options = options;
  }

  start(): void {
    this.#loop ??= this.#run();
  }

  async #run(): Promise<void> {
    const { http, urls, concurrency, held, slotFreed, onTaken, log } = this.#options;
    const signal = this.#closed.signal;
    const closed = aborted(signal);
    await this.#options.ready(signal);
    if (!signal.aborted) log.info("taking jobs", { concurrency });
    while (!signal.aborted) {
      const holding = held();
      const free = concurrency - holding;
      if (free <= 0) {
        await Promise.race([slotFreed(), closed]);
        continue;
      }
      const startedAt = performance.now();
      let status: number;
      let text: string;
      try {
        this.takes += 1;
        const url = urls.take(free, holding > 0);
        ({ status, text } = await http.get(url, this.#options.takeTimeoutMs ?? 90_000, signal));
      } catch (error) {
        if (signal.aborted) return;
        if (error instanceof Error && error.name === "TimeoutError") continue;
        const wait = this.#backoff.next();
        log.warn("job take failed", {
          error: messageOf(error),
          retryInMs: wait,
        });
        await sleep(wait, { signal, onAbort: "resolve" });
        continue;
      }
      if (status === 204 || status === 400) {
        this.#backoff.reset();
        await sleep(emptyPollSpacingMs - (performance.now() - startedAt), {
          signal,
          onAbort: "resolve",
        });
        continue;
      }
      if (status === 429) {
        log.info("the platform asked to slow down (429)", { retryInMs: tooManyRequestsWaitMs });
        await sleep(tooManyRequestsWaitMs, { signal, onAbort: "resolve" });
        continue;
      }
      if (status < 200 || status >= 300) {
        const wait = this.#backoff.next();
        log.warn("job take answered with an error", { status, retryInMs: wait });
        await sleep(wait, { signal, onAbort: "resolve" });
        continue;
      }
      this.#backoff.reset();
      let take: ParsedTake;
      try {
        take = parseTakeAnswer(text);
      } catch (error) {
        log.warn("ignored a job-take answer that is not a job", {
          error: messageOf(error),
        });
        continue;
      }
      onTaken(take);
    }
  }

  /** Stops taking: aborts the long poll in flight and waits for the loop to end. */
  async close(): Promise<void> {
    this.#closed.abort();
    await this.#loop;
  }
}
