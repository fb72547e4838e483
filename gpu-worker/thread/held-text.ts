import type { TokenLogprob } from "../../shared/protocol/index.js";

interface Piece {
  text: string;
  logprobs: TokenLogprob[];
  /** The ids of the piece's tokens. */
  tokens: readonly number[];
}

/**
 * Where a piece goes out: its text, its tokens' logprobs, and their ids (absent for a piece cut
 * at a stop string: the text no longer is those tokens' whole text).
 */
type Emit = (text: string, logprobs: TokenLogprob[], tokens: readonly number[] | undefined) => void;

/**
 * The text of a generation that carries logprobs, on its way out: each piece (a token's text, or
 * a few tokens' that make one character) goes out with its tokens' logprobs once it cannot be the
 * start of a stop string; a stop string found ends the text where it begins (the piece it starts
 * in goes out cut, with its logprobs; later pieces never). With `trimEnd` (a grammar that says
 * so, as node-llama-cpp reads it) trailing whitespace waits for more text and is dropped at the
 * end.
 */
export class HeldText {
  readonly #stops: readonly string[];
  readonly #longestStop: number;
  readonly #trimEnd: boolean;
  readonly #emit: Emit;
  /** All the text so far; `#emitted` characters of it went out, the rest is `#pending`'s. */
  #text = "";
  #emitted = 0;
  readonly #pending: Piece[] = [];

  constructor(stops: readonly string[], trimEnd: boolean, emit: Emit) {
    this.#stops = stops.filter((stop) => stop.length > 0);
    this.#longestStop = Math.max(0, ...this.#stops.map((stop) => stop.length));
    this.#trimEnd = trimEnd;
    this.#emit = emit;
  }

  /** Adds a piece; `true` when a stop string now ends the text (nothing more is to be added). */
  add(text: string, logprobs: TokenLogprob[], tokens: readonly number[] = []): boolean {
    const from = Math.max(0, this.#text.length - this.#longestStop + 1);
    this.#text += text;
    this.#pending.push({ text, logprobs, tokens });
    const stopAt = this.#firstStop(from);
    if (stopAt !== undefined) {
      this.#emitUntil(stopAt);
      this.#pending.length = 0;
      return true;
    }
    const held = Math.max(this.#stopPrefixLength(), this.#trimEnd ? trailingSpace(this.#text) : 0);
    this.#emitWhole(this.#text.length - held);
    return false;
  }

  /** The generation ended: what waits goes out (trailing whitespace dropped with `trimEnd`). */
  end(): void {
    const end = this.#trimEnd ? this.#text.trimEnd().length : this.#text.length;
    this.#emitUntil(Math.max(end, this.#emitted));
    this.#pending.length = 0;
  }

  #firstStop(from: number): number | undefined {
    let first: number | undefined;
    for (const stop of this.#stops) {
      const at = this.#text.indexOf(stop, from);
      if (at >= 0 && (first === undefined || at < first)) first = at;
    }
    return first;
  }

  /** The longest end of the waiting text that begins some stop string. */
  #stopPrefixLength(): number {
    const waiting = this.#text.length - this.#emitted;
    for (let length = Math.min(this.#longestStop - 1, waiting); length > 0; length -= 1) {
      const tail = this.#text.slice(this.#text.length - length);
      if (this.#stops.some((stop) => stop.startsWith(tail))) return length;
    }
    return 0;
  }

  /** Sends the waiting pieces that end by `end`, whole. */
  #emitWhole(end: number): void {
    while (this.#pending.length > 0) {
      const piece = this.#pending[0] as Piece;
      if (this.#emitted + piece.text.length > end) return;
      this.#pending.shift();
      this.#emitted += piece.text.length;
      this.#emit(piece.text, piece.logprobs, piece.tokens);
    }
  }

  /** Sends the waiting text up to `end`, the piece it falls in cut there. */
  #emitUntil(end: number): void {
    this.#emitWhole(end);
    const piece = this.#pending.shift();
    if (piece === undefined || this.#emitted >= end) return;
    const text = piece.text.slice(0, end - this.#emitted);
    this.#emitted += text.length;
    this.#emit(text, piece.logprobs, text.length === piece.text.length ? piece.tokens : undefined);
  }
}

function trailingSpace(text: string): number {
  return text.length - text.trimEnd().length;
}
