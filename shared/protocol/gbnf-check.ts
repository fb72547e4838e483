/**
 * A check of GBNF grammar text that follows llama.cpp's own parser (`llama_grammar_parser::parse`)
 * rule for rule, and is at least as strict. It runs before a grammar reaches llama.cpp for two
 * reasons: a grammar llama.cpp cannot parse is printed, whole, to the process's stderr by
 * llama.cpp itself (`error parsing grammar: ...` followed by the text), which would put request
 * data in the logs; and the caller gets told where the grammar is wrong, at admission, with
 * nothing queued. Messages give a line and column and what was expected, never the text.
 */

/** Why a grammar was refused, or `undefined` when llama.cpp will parse it. */
export function gbnfProblem(text: string): string | undefined {
  try {
    new GbnfChecker(text).check();
    return undefined;
  } catch (error) {
    if (error instanceof GbnfError) return error.message;
    throw error;
  }
}

class GbnfError extends Error {}

/** llama.cpp's limit on `{m,n}` repetitions. */
const maxRepetitions = 2000;

class GbnfChecker {
  #pos = 0;
  readonly #src: string;
  readonly #defined = new Set<string>();
  /** Each rule referenced, with where (for the message). */
  readonly #referenced = new Map<string, number>();

  constructor(src: string) {
    this.#src = src;
  }

  check(): void {
    // A C string ends at the first NUL: llama.cpp would read less than was checked.
    const nul = this.#src.indexOf("\0");
    if (nul >= 0) this.#fail("a NUL character is not allowed", nul);
    this.#space(true);
    while (this.#more()) this.#rule();
    for (const [name, at] of this.#referenced) {
      if (!this.#defined.has(name)) this.#fail("a rule is used but never defined", at);
    }
    if (!this.#defined.has("root")) this.#fail('there is no "root" rule', this.#src.length);
  }

  #rule(): void {
    const name = this.#name();
    this.#space(false);
    if (!this.#src.startsWith("::=", this.#pos)) this.#fail('expecting "::="');
    this.#pos += 3;
    this.#space(true);
    this.#alternates(false);
    if (this.#peek() === "\r") this.#pos += this.#src[this.#pos + 1] === "\n" ? 2 : 1;
    else if (this.#peek() === "\n") this.#pos += 1;
    else if (this.#more()) this.#fail("expecting a newline or the end");
    this.#defined.add(name);
    this.#space(true);
  }

  #alternates(nested: boolean): void {
    this.#sequence(nested);
    while (this.#peek() === "|") {
      this.#pos += 1;
      this.#space(true);
      this.#sequence(nested);
    }
  }

  #sequence(nested: boolean): void {
    // Whether the last item added symbols: a repetition needs one (llama.cpp's `last_sym_start`);
    // an empty string or class adds none.
    let repeatable = false;
    while (this.#more()) {
      const c = this.#peek();
      if (c === '"') {
        this.#pos += 1;
        repeatable = false;
        while (this.#peek() !== '"') {
          if (!this.#more()) this.#fail("unexpected end of input in a string");
          this.#char();
          repeatable = true;
        }
        this.#pos += 1;
      } else if (c === "[") {
        this.#pos += 1;
        if (this.#peek() === "^") this.#pos += 1;
        repeatable = false;
        while (this.#peek() !== "]") {
          if (!this.#more()) this.#fail("unexpected end of input in a character class");
          this.#char();
          repeatable = true;
          if (this.#peek() === "-" && this.#src[this.#pos + 1] !== "]") {
            if (this.#pos + 1 >= this.#src.length) this.#fail("unexpected end of input");
            this.#pos += 1;
            this.#char();
          }
        }
        this.#pos += 1;
      } else if (isWordChar(c)) {
        const at = this.#pos;
        const name = this.#name();
        if (!this.#referenced.has(name)) this.#referenced.set(name, at);
        repeatable = true;
      } else if (c === "(") {
        this.#pos += 1;
        this.#space(true);
        this.#alternates(true);
        if (this.#peek() !== ")") this.#fail('expecting ")"');
        this.#pos += 1;
        repeatable = true;
      } else if (c === ".") {
        this.#pos += 1;
        repeatable = true;
      } else if (c === "*" || c === "+" || c === "?") {
        if (!repeatable) this.#fail(`expecting a non-empty item before "${c}"`);
        this.#pos += 1;
        this.#space(nested);
        continue;
      } else if (c === "{") {
        if (!repeatable) this.#fail('expecting a non-empty item before "{"');
        this.#pos += 1;
        this.#space(nested);
        const min = this.#int();
        this.#space(nested);
        let max = min;
        if (this.#peek() === ",") {
          this.#pos += 1;
          this.#space(nested);
          max = isDigit(this.#peek()) ? this.#int() : Number.POSITIVE_INFINITY;
          this.#space(nested);
        }
        if (this.#peek() !== "}") this.#fail('expecting "}"');
        this.#pos += 1;
        if (min > maxRepetitions || (Number.isFinite(max) && max > maxRepetitions)) {
          this.#fail(`a repetition is limited to ${maxRepetitions}`);
        }
        this.#space(nested);
        continue;
      } else if (c === "<" || c === "!") {
        this.#fail("token references (<...>) are not supported");
      } else {
        break;
      }
      this.#space(nested);
    }
  }

  /** One character of a string or class: a UTF-8 character or one of llama.cpp's escapes. */
  #char(): void {
    if (this.#peek() !== "\\") {
      const code = this.#src.codePointAt(this.#pos) as number;
      this.#pos += code > 0xffff ? 2 : 1;
      return;
    }
    const escaped = this.#src[this.#pos + 1];
    const hex = escaped === "x" ? 2 : escaped === "u" ? 4 : escaped === "U" ? 8 : 0;
    if (hex > 0) {
      const digits = this.#src.slice(this.#pos + 2, this.#pos + 2 + hex);
      if (!new RegExp(`^[0-9a-fA-F]{${hex}}$`).test(digits)) {
        this.#fail(`expecting ${hex} hex digits after \\${escaped}`);
      }
      this.#pos += 2 + hex;
    } else if (escaped !== undefined && 'trn\\"[]'.includes(escaped)) {
      this.#pos += 2;
    } else {
      this.#fail("unknown escape");
    }
  }

  #name(): string {
    const start = this.#pos;
    while (isWordChar(this.#peek())) this.#pos += 1;
    if (this.#pos === start) this.#fail("expecting a rule name");
    return this.#src.slice(start, this.#pos);
  }

  #int(): number {
    const start = this.#pos;
    while (isDigit(this.#peek())) this.#pos += 1;
    if (this.#pos === start) this.#fail("expecting a whole number");
    // Longer than llama.cpp's int would overflow: refused by the repetition limit anyway.
    return Number(this.#src.slice(start, Math.min(this.#pos, start + 12)));
  }

  /** Spaces, tabs and `#` comments; newlines too where `newlines` (inside brackets, between rules). */
  #space(newlines: boolean): void {
    while (this.#more()) {
      const c = this.#peek();
      if (c === " " || c === "\t") this.#pos += 1;
      else if (c === "#") {
        while (this.#more() && this.#peek() !== "\r" && this.#peek() !== "\n") this.#pos += 1;
      } else if (newlines && (c === "\r" || c === "\n")) this.#pos += 1;
      else return;
    }
  }

  #peek(): string {
    return this.#src[this.#pos] ?? "";
  }

  #more(): boolean {
    return this.#pos < this.#src.length;
  }

  #fail(what: string, at = this.#pos): never {
    const before = this.#src.slice(0, at);
    const line = before.split("\n").length;
    const column = at - (before.lastIndexOf("\n") + 1) + 1;
    throw new GbnfError(`line ${line}, column ${column}: ${what}`);
  }
}

function isWordChar(c: string): boolean {
  return /^[a-zA-Z0-9-]$/.test(c);
}

function isDigit(c: string): boolean {
  return c >= "0" && c <= "9";
}
