import { messageOf } from "../../shared/errors/index.js";
import type { Logger } from "../../shared/log.js";
import type { PlatformHttp } from "./platform-http.js";
import type { WebhookUrls } from "./webhook-urls.js";

export interface HeartbeatOptions {
  http: PlatformHttp;
  urls: WebhookUrls;
  intervalMs: number;
  /** The ids of the jobs held now. */
  heldJobIds: () => readonly string[];
  /** Sent as `runpod_version`. */
  version: string;
  log: Logger;
}

/**
 * Pings the platform every interval with the held job ids, on its own timer: each ping is sent on
 * schedule whether or not the previous one answered (timeout 2× the interval), and nothing the
 * job loop does waits on it. Errors are logged, never fatal.
 */
export class Heartbeat {
  readonly #options: HeartbeatOptions;
  #timer: NodeJS.Timeout | undefined;
  readonly #stop = new AbortController();
  #failures = 0;

  constructor(options: HeartbeatOptions) {
    this.#options = options;
  }

  start(): void {
    if (this.#timer !== undefined || this.#stop.signal.aborted) return;
    this.#ping();
    this.#timer = setInterval(() => this.#ping(), this.#options.intervalMs);
  }

  #ping(): void {
    const { http, urls, intervalMs, heldJobIds, version, log } = this.#options;
    const url = urls.ping(heldJobIds(), version);
    if (url === undefined) return;
    http
      .get(url, intervalMs * 2, this.#stop.signal)
      .then((response) => {
        if (response.status >= 400) throw new Error(`HTTP ${response.status}`);
        if (this.#failures > 0) log.info("heartbeat answered again", { after: this.#failures });
        this.#failures = 0;
      })
      .catch((error: unknown) => {
        if (this.#stop.signal.aborted) return;
        this.#failures += 1;
        // Every failure while few, then one in ten: a long outage should not flood the log.
        if (this.#failures <= 3 || this.#failures % 10 === 0) {
          log.warn("heartbeat failed", {
            failures: this.#failures,
            error: messageOf(error),
          });
        }
      });
  }

  close(): void {
    clearInterval(this.#timer);
    this.#stop.abort();
  }
}
