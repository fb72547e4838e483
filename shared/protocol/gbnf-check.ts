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

/**
 * A symbol of a rule, as far as left recursion is concerned: a terminal, or a reference to a rule
 * (named, a group, or one of the rules llama.cpp writes for a repetition).
 */
type GbnfSymbol = { ref: number } | { ref?: undefined };

/** llama.cpp's limit on `{m,n}` repetitions. */
const maxRepetitions = 2000;

class GbnfChecker {
  #pos = 0;
  readonly #src: string;
  readonly #defined = new Set<string>();
  /** Each rule referenced, with where (for the message). */
  readonly #referenced = new Map<string, number>();
  /** Rule ids by name, and each rule's alternatives, as llama.cpp builds them. */
  readonly #ids = new Map<string, number>();
  readonly #rules = new Map<number, GbnfSymbol[][]>();
  #nextId = 0;

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
    if (this.#leftRecursive()) {
      this.#fail("left recursion is not supported (llama.cpp refuses it)", this.#src.length);
    }
  }

  #idOf(name: string): number {
    let id = this.#ids.get(name);
    if (id === undefined) {
      id = this.#nextId++;
      this.#ids.set(name, id);
    }
    return id;
  }

  #newRule(alternatives: GbnfSymbol[][]): number {
    const id = this.#nextId++;
    this.#rules.set(id, alternatives);
    return id;
  }

  /**
   * llama.cpp's `llama_grammar_detect_left_recursion`: from each rule, follow the leftmost
   * references (past those whose rule has an empty alternative); reaching a rule in progress is
   * left recursion.
   */
  #leftRecursive(): boolean {
    const mayBeEmpty = new Set<number>();
    const inProgress = new Set<number>();
    const visit = (id: number): boolean => {
      if (inProgress.has(id)) return true;
      inProgress.add(id);
      const alternatives = this.#rules.get(id) ?? [];
      if (alternatives.some((alternative) => alternative.length === 0)) mayBeEmpty.add(id);
      for (const alternative of alternatives) {
        for (const symbol of alternative) {
          if (symbol.ref === undefined) break;
          if (visit(symbol.ref)) return true;
          if (!mayBeEmpty.has(symbol.ref)) break;
        }
      }
      inProgress.delete(id);
      return false;
    };
    return [...this.#rules.keys()].some((id) => visit(id));
  }

  #rule(): void {
    const name = this.#name();
    this.#space(false);
    if (!this.#src.startsWith("::=", this.#pos)) this.#fail('expecting "::="');
    this.#pos += 3;
    this.#space(true);
    const id = this.#idOf(name);
    this.#rules.set(id, this.#alternates(false));
    if (this.#peek() === "\r") this.#pos += this.#src[this.#pos + 1] === "\n" ? 2 : 1;
    else if (this.#peek() === "\n") this.#pos += 1;
    else if (this.#more()) this.#fail("expecting a newline or the end");
    this.#defined.add(name);
    this.#space(true);
  }

  #alternates(nested: boolean): GbnfSymbol[][] {
    const alternatives = [this.#sequence(nested)];
    while (this.#peek() === "|") {
      this.#pos += 1;
      this.#space(true);
      alternatives.push(this.#sequence(nested));
    }
    return alternatives;
  }

  #sequence(nested: boolean): GbnfSymbol[] {
    const symbols: GbnfSymbol[] = [];
    // Where the last item's symbols start (llama.cpp's `last_sym_start`): what a repetition
    // repeats. An empty string or class adds none, and cannot be repeated.
    let lastStart = 0;
    while (this.#more()) {
      const c = this.#peek();
      if (c === '"') {
        this.#pos += 1;
        lastStart = symbols.length;
        let empty = true;
        while (this.#peek() !== '"') {
          if (!this.#more()) this.#fail("unexpected end of input in a string");
          this.#char();
          empty = false;
        }
        this.#pos += 1;
        if (!empty) symbols.push({});
      } else if (c === "[") {
        this.#pos += 1;
        if (this.#peek() === "^") this.#pos += 1;
        lastStart = symbols.length;
        let empty = true;
        while (this.#peek() !== "]") {
          if (!this.#more()) this.#fail("unexpected end of input in a character class");
          this.#char();
          empty = false;
          if (this.#peek() === "-" && this.#src[this.#pos + 1] !== "]") {
            if (this.#pos + 1 >= this.#src.length) this.#fail("unexpected end of input");
            this.#pos += 1;
            this.#char();
          }
        }
        this.#pos += 1;
        if (!empty) symbols.push({});
      } else if (isWordChar(c)) {
        const at = this.#pos;
        const name = this.#name();
        if (!this.#referenced.has(name)) this.#referenced.set(name, at);
        lastStart = symbols.length;
        symbols.push({ ref: this.#idOf(name) });
      } else if (c === "(") {
        this.#pos += 1;
        this.#space(true);
        const group = this.#newRule(this.#alternates(true));
        if (this.#peek() !== ")") this.#fail('expecting ")"');
        this.#pos += 1;
        lastStart = symbols.length;
        symbols.push({ ref: group });
      } else if (c === ".") {
        this.#pos += 1;
        lastStart = symbols.length;
        symbols.push({});
      } else if (c === "*" || c === "+" || c === "?") {
        if (symbols.length === lastStart) this.#fail(`expecting a non-empty item before "${c}"`);
        this.#pos += 1;
        this.#space(nested);
        this.#repeat(symbols, lastStart, c === "+" ? 1 : 0, c === "?" ? 1 : -1);
        continue;
      } else if (c === "{") {
        if (symbols.length === lastStart) this.#fail('expecting a non-empty item before "{"');
        this.#pos += 1;
        this.#space(nested);
        const min = this.#int();
        this.#space(nested);
        let max = min;
        if (this.#peek() === ",") {
          this.#pos += 1;
          this.#space(nested);
          max = isDigit(this.#peek()) ? this.#int() : -1;
          this.#space(nested);
        }
        if (this.#peek() !== "}") this.#fail('expecting "}"');
        this.#pos += 1;
        if (min > maxRepetitions || max > maxRepetitions) {
          this.#fail(`a repetition is limited to ${maxRepetitions}`);
        }
        this.#space(nested);
        this.#repeat(symbols, lastStart, min, max);
        continue;
      } else if (c === "<" || c === "!") {
        this.#fail("token references (<...>) are not supported");
      } else {
        break;
      }
      this.#space(nested);
    }
    return symbols;
  }

  /**
   * llama.cpp's rewrite of `S{min,max}` (`max` -1: unbounded): S repeated `min` times, then
   * rules `S' ::= S S'' |` for the optional rest.
   */
  #repeat(symbols: GbnfSymbol[], lastStart: number, min: number, max: number): void {
    const item = symbols.slice(lastStart);
    if (min === 0) symbols.length = lastStart;
    else for (let i = 1; i < min; i += 1) symbols.push(...item);
    const optional = max < 0 ? 1 : max - min;
    let last = -1;
    for (let i = 0; i < optional; i += 1) {
      const id = this.#nextId++;
      const first = [...item];
      if (i > 0 || max < 0) first.push({ ref: max < 0 ? id : last });
      this.#rules.set(id, [first, []]);
      last = id;
    }
    if (optional > 0) symbols.push({ ref: last });
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
