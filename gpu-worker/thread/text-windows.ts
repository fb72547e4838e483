/** A window sends at once when this much text is waiting, window or not. */
const maxPendingChars = 16_384;

/**
 * Delta coalescing in the model thread (`DELTA_WINDOW_MS`), before any message crosses to the main
 * thread: a job's first piece of text goes out at once (time to first token matters), later
 * pieces at most once per window. The windows of all the thread's jobs share one timer, which
 * flushes every window that ends within half a window from now: jobs generating together send
 * together, and the main thread writes their deltas to Redis in one pipeline. Measured on 2 CPU
 * cores: a message per token cost the generating thread 7% of its time in `postMessage` alone.
 */
export class TextWindows {
  readonly #windowMs: number;
  /** Windows with text waiting, and when each may send. */
  readonly #due = new Map<TextWindow, number>();
  #timer: NodeJS.Timeout | undefined;
  #timerAt = Number.POSITIVE_INFINITY;

  constructor(windowMs: number) {
    this.#windowMs = windowMs;
  }

  /** A window for one job; `send` gets its coalesced text. */
  open(send: (text: string) => void): TextWindow {
    return new TextWindow(this.#windowMs, send, (window, at) => this.#schedule(window, at));
  }

  #schedule(window: TextWindow, at: number | undefined): void {
    if (at === undefined) {
      this.#due.delete(window);
      return;
    }
    this.#due.set(window, at);
    if (at < this.#timerAt) this.#arm(at);
  }

  #arm(at: number): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timerAt = at;
    this.#timer = setTimeout(() => this.#fire(), Math.max(0, at - performance.now()));
  }

  #fire(): void {
    this.#timer = undefined;
    this.#timerAt = Number.POSITIVE_INFINITY;
    const horizon = performance.now() + this.#windowMs / 2;
    let next = Number.POSITIVE_INFINITY;
    for (const [window, at] of [...this.#due]) {
      if (at <= horizon) window.flush();
      else next = Math.min(next, at);
    }
    if (next !== Number.POSITIVE_INFINITY) this.#arm(next);
  }
}

/** One job's text on its way out: see {@link TextWindows}. */
export class TextWindow {
  readonly #windowMs: number;
  readonly #send: (text: string) => void;
  readonly #schedule: (window: TextWindow, at: number | undefined) => void;
  #pending = "";
  #scheduled = false;
  #lastSendAt = Number.NEGATIVE_INFINITY;

  constructor(
    windowMs: number,
    send: (text: string) => void,
    schedule: (window: TextWindow, at: number | undefined) => void,
  ) {
    this.#windowMs = windowMs;
    this.#send = send;
    this.#schedule = schedule;
  }

  push(text: string): void {
    if (text.length === 0) return;
    this.#pending += text;
    if (this.#pending.length >= maxPendingChars) {
      this.flush();
      return;
    }
    if (this.#scheduled) return;
    const at = this.#lastSendAt + this.#windowMs;
    if (at <= performance.now()) {
      this.flush();
      return;
    }
    this.#scheduled = true;
    this.#schedule(this, at);
  }

  /** Sends what is waiting now; call it before the job's last message. */
  flush(): void {
    if (this.#scheduled) {
      this.#scheduled = false;
      this.#schedule(this, undefined);
    }
    if (this.#pending.length === 0) return;
    const text = this.#pending;
    this.#pending = "";
    this.#lastSendAt = performance.now();
    this.#send(text);
  }
}
