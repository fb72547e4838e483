import { messageOf } from "../../shared/errors/index.js";
import type { Logger } from "../../shared/log.js";
import { sleep } from "../../shared/process/sleep.js";
import type { PlatformHttp } from "./platform-http.js";

/** RunPod's limit on one stream post. */
export const maxStreamPostBytes = 1_000_000;
/** `{"output":[]}` around the chunks, and a comma between two. */
const envelopeBytes = 13;

export interface StreamPosterOptions {
  http: PlatformHttp;
  /** The job's stream URL (`isStream=false` already appended). */
  url: string;
  jobId: string;
  /** Least time between the starts of two posts, in ms: chunks produced meanwhile share one. */
  windowMs: number;
  /**
   * Post the chunks of one post as one string, joined (`{"output": "..."}`), instead of a list:
   * for text chunks such as OpenAI server-sent events. Default false.
   */
  joinText?: boolean;
  /** Largest body of one post, in bytes (RunPod's 1 MB by default). */
  maxBytes?: number;
  log: Logger;
}

/**
 * Posts one job's chunks to the platform's stream URL, in order, without ever holding up the job:
 * `push` only queues. One post is in flight at a time (so they arrive in order). The first chunk
 * goes out at once; later ones wait until the window since the previous post's start has passed
 * (and that post has been answered), then everything waiting goes out together as
 * `{"output": [chunk, ...]}`, up to `maxBytes` per post. A slow platform thus gets fewer, larger
 * posts instead of a growing backlog.
 */
export class StreamPoster {
  readonly #options: StreamPosterOptions;
  readonly #maxBytes: number;
  #pending: { chunk: unknown; bytes: number }[] = [];
  #lastPostAt = Number.NEGATIVE_INFINITY;
  #running: Promise<void> | undefined;
  /** Aborted to skip the window (the job ended) or to drop everything (the job was stopped). */
  #hurry = new AbortController();
  readonly #abandon = new AbortController();
  posts = 0;

  constructor(options: StreamPosterOptions) {
    this.#options = options;
    this.#maxBytes = options.maxBytes ?? maxStreamPostBytes;
  }

  push(chunk: unknown): void {
    if (this.#abandon.signal.aborted) return;
    const bytes = Buffer.byteLength(JSON.stringify(chunk)) + 1;
    this.#pending.push({ chunk, bytes });
    this.#running ??= this.#run().finally(() => {
      this.#running = undefined;
    });
  }

  /** Resolves when every pushed chunk has been posted (or given up on); posts at once. */
  async flush(): Promise<void> {
    this.#hurry.abort();
    while (this.#running !== undefined) await this.#running;
  }

  /** Drops the chunks not yet posted and stops retrying: the job was stopped. */
  abandon(): void {
    this.#pending = [];
    this.#hurry.abort();
    this.#abandon.abort();
  }

  async #run(): Promise<void> {
    const { http, url, jobId, windowMs, log } = this.#options;
    while (this.#pending.length > 0 && !this.#abandon.signal.aborted) {
      const wait = this.#lastPostAt + windowMs - performance.now();
      if (wait > 0) await sleep(wait, { signal: this.#hurry.signal, onAbort: "resolve" });
      const batch = this.#takeBatch();
      if (batch.length === 0) break;
      this.#lastPostAt = performance.now();
      try {
        this.posts += 1;
        const output = this.#options.joinText === true ? batch.join("") : batch;
        await http.post(url, { output }, jobId, {
          signal: this.#abandon.signal,
          what: "stream",
        });
      } catch (error) {
        if (this.#abandon.signal.aborted) return;
        // The final output still carries every chunk.
        log.warn("a stream post was lost", {
          jobId,
          chunks: batch.length,
          error: messageOf(error),
        });
      }
    }
  }

  #takeBatch(): unknown[] {
    let bytes = envelopeBytes;
    let count = 0;
    for (const item of this.#pending) {
      if (count > 0 && bytes + item.bytes > this.#maxBytes) break;
      bytes += item.bytes;
      count += 1;
    }
    if (count === 1 && bytes > this.#maxBytes) {
      this.#options.log.warn("a stream chunk is larger than a stream post may be", {
        jobId: this.#options.jobId,
        bytes,
      });
    }
    return this.#pending.splice(0, count).map((item) => item.chunk);
  }
}
