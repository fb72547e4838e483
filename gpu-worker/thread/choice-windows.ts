import type { ThreadToMainMessage, TokenLogprob } from "../../shared/protocol/index.js";
import type { TextWindow, TextWindows } from "./text-windows.js";

/**
 * The text windows of a job's choices (`n` > 1) and of the text that carries logprobs: one window
 * per choice, so each choice's text is coalesced apart and its deltas name it. Choice 0 without
 * logprobs goes through the job's own window, as every other job's text does.
 */
export class ChoiceWindows {
  readonly #windows: TextWindows;
  readonly #plain: TextWindow;
  readonly #send: (message: ThreadToMainMessage) => void;
  readonly #byIndex = new Map<number, TextWindow>();

  constructor(
    windows: TextWindows,
    plain: TextWindow,
    send: (message: ThreadToMainMessage) => void,
  ) {
    this.#windows = windows;
    this.#plain = plain;
    this.#send = send;
  }

  push(index: number, text: string, logprobs: readonly TokenLogprob[] | undefined): void {
    if (index === 0 && logprobs === undefined) {
      this.#plain.push(text);
      return;
    }
    let window = this.#byIndex.get(index);
    if (window === undefined) {
      window = this.#windows.open((piece, extras) =>
        this.#send({
          type: "delta",
          text: piece,
          ...(index === 0 ? {} : { index }),
          ...(extras?.logprobs === undefined ? {} : { logprobs: extras.logprobs }),
        }),
      );
      this.#byIndex.set(index, window);
    }
    // An empty list still marks text that asked for logprobs (a token without any is rare).
    window.push(text, logprobs);
  }

  /** Sends what is waiting, in index order, and closes the windows (once). */
  close(): void {
    for (const index of [...this.#byIndex.keys()].sort((a, b) => a - b)) {
      this.#byIndex.get(index)?.close();
    }
    this.#byIndex.clear();
  }
}
