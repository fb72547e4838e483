import type { TokenLogprob, ToolCallPiece } from "../../shared/protocol/index.js";

/** A window sends at once when this much text is waiting, window or not. */
const maxPendingChars = 16_384;
/** The longest a window grows to with many jobs on one thread (unless `DELTA_WINDOW_MS` is longer). */
export const maxScaledWindowMs = 250;

/**
 * Delta coalescing in the model thread (`DELTA_WINDOW_MS`), before any message crosses to the main
 * thread: a job's first piece of text goes out at once (time to first token matters), later
 * pieces at most once per window. The windows of all the thread's jobs share one timer, which
 * flushes every window that ends within half a window from now: jobs generating together send
 * together, and the main thread writes their deltas to Redis in one pipeline. Measured on 2 CPU
 * cores: a message per token cost the generating thread 7% of its time in `postMessage` alone.
 *
 * The window grows with the jobs open on the thread (`DELTA_WINDOW_MS` × jobs, at most
 * {@link maxScaledWindowMs}), so a thread sends about as many deltas a second with eight jobs as
 * with one: the cost of a delta (a message, a sealed Redis write, the orchestrator's relay, a
 * `/stream` answer) stays off the generation's back under load, and one job alone streams as
 * finely as before.
 */
export class TextWindows {
  readonly #windowMs: number;
  /** Windows with text waiting, and when each may send. */
  readonly #due = new Map<TextWindow, number>();
  #timer: NodeJS.Timeout | undefined;
  #timerAt = Number.POSITIVE_INFINITY;
  /** Windows opened and not closed: the thread's jobs. */
  #open = 0;

  constructor(windowMs: number) {
    this.#windowMs = windowMs;
  }

  /** Windows opened and not yet closed: the thread's jobs. */
  get openWindows(): number {
    return this.#open;
  }

  /** The window now: `DELTA_WINDOW_MS`, times the jobs open, up to {@link maxScaledWindowMs}. */
  get windowMs(): number {
    const scaled = Math.min(this.#windowMs * this.#open, maxScaledWindowMs);
    return Math.max(this.#windowMs, scaled);
  }

  /**
   * A window for one job (or one choice of it); `send` gets its coalesced text, the logprobs of its
   * tokens when they were pushed with it, and the function-call pieces generated after it.
   * {@link TextWindow.close} it at the end.
   */
  open(send: WindowSend): TextWindow {
    this.#open += 1;
    return new TextWindow({
      windowMs: () => this.windowMs,
      send,
      schedule: (window, at) => this.#schedule(window, at),
      closed: () => {
        this.#open -= 1;
      },
    });
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
    const horizon = performance.now() + this.windowMs / 2;
    let next = Number.POSITIVE_INFINITY;
    for (const [window, at] of [...this.#due]) {
      if (at <= horizon) window.flush();
      else next = Math.min(next, at);
    }
    if (next !== Number.POSITIVE_INFINITY) this.#arm(next);
  }
}

/** What a window's message adds to its text, when there is any. */
export interface WindowExtras {
  logprobs?: TokenLogprob[];
  /** The ids of the tokens whose text this is (what a continuation replays, see `continue.ts`). */
  tokens?: number[];
  toolCalls?: ToolCallPiece[];
}

type WindowSend = (text: string, extras?: WindowExtras) => void;

interface TextWindowParts {
  /** The window's length now. */
  windowMs: () => number;
  send: WindowSend;
  schedule: (window: TextWindow, at: number | undefined) => void;
  closed: () => void;
}

/** One job's text on its way out: see {@link TextWindows}. */
export class TextWindow {
  readonly #parts: TextWindowParts;
  #pending = "";
  /** Function-call pieces waiting, after the text. */
  #calls: ToolCallPiece[] = [];
  /** The logprobs of the pending text's tokens, for a job that asked for them. */
  #pendingLogprobs: TokenLogprob[] | undefined;
  /** The ids of the pending text's tokens, for a job whose text carries them. */
  #pendingTokens: number[] | undefined;
  #scheduled = false;
  #closed = false;
  #lastSendAt = Number.NEGATIVE_INFINITY;

  constructor(parts: TextWindowParts) {
    this.#parts = parts;
  }

  /**
   * Adds text, with its tokens' logprobs and ids when given. Token ids of no text (a token that
   * reads as nothing) wait for the next text: they go out with it, never alone.
   */
  push(text: string, logprobs?: readonly TokenLogprob[], tokens?: readonly number[]): void {
    const withLogprobs = logprobs !== undefined && logprobs.length > 0;
    const withTokens = tokens !== undefined && tokens.length > 0;
    if (!withLogprobs && text.length === 0 && !withTokens) return;
    // Text after function-call pieces goes in a later message, so the order is kept.
    if (this.#calls.length > 0) this.flush();
    if (withLogprobs) {
      this.#pendingLogprobs ??= [];
      this.#pendingLogprobs.push(...logprobs);
    }
    if (withTokens) {
      this.#pendingTokens ??= [];
      this.#pendingTokens.push(...tokens);
    }
    this.#pending += text;
    if (text.length > 0 || withLogprobs) this.#due();
  }

  /**
   * Adds a piece of a function call; it goes out after the text waiting. A piece that only
   * continues the last one's `arguments` joins it.
   */
  pushToolCall(piece: ToolCallPiece): void {
    const last = this.#calls.at(-1);
    if (
      last?.index === piece.index &&
      piece.id === undefined &&
      piece.name === undefined &&
      piece.arguments !== undefined
    ) {
      last.arguments = (last.arguments ?? "") + piece.arguments;
    } else {
      this.#calls.push({ ...piece });
    }
    this.#due();
  }

  /** Sends now, or schedules the send at the end of the window. */
  #due(): void {
    if (this.#pending.length >= maxPendingChars) {
      this.flush();
      return;
    }
    if (this.#scheduled) return;
    const at = this.#lastSendAt + this.#parts.windowMs();
    if (at <= performance.now()) {
      this.flush();
      return;
    }
    this.#scheduled = true;
    this.#parts.schedule(this, at);
  }

  /** Sends what is waiting now; call it before the job's last message. */
  flush(): void {
    if (this.#scheduled) {
      this.#scheduled = false;
      this.#parts.schedule(this, undefined);
    }
    if (
      this.#pending.length === 0 &&
      this.#calls.length === 0 &&
      this.#pendingLogprobs === undefined
    ) {
      return;
    }
    const text = this.#pending;
    const calls = this.#calls;
    const logprobs = this.#pendingLogprobs;
    // Token ids of no text yet wait for text (dropped at the end: no continuation follows it).
    const tokens = text.length > 0 ? this.#pendingTokens : undefined;
    this.#pending = "";
    this.#calls = [];
    this.#pendingLogprobs = undefined;
    if (tokens !== undefined) this.#pendingTokens = undefined;
    this.#lastSendAt = performance.now();
    if (calls.length === 0 && logprobs === undefined && tokens === undefined) {
      this.#parts.send(text);
    } else {
      this.#parts.send(text, {
        ...(logprobs === undefined ? {} : { logprobs }),
        ...(tokens === undefined ? {} : { tokens }),
        ...(calls.length === 0 ? {} : { toolCalls: calls }),
      });
    }
  }

  /** Sends what is waiting and leaves the thread's windows (once; later calls do nothing). */
  close(): void {
    this.flush();
    if (this.#closed) return;
    this.#closed = true;
    this.#parts.closed();
  }
}
