/**
 * The text of one JSON object, taken from generated pieces as they come: what precedes its `{`
 * and what follows its closing `}` (whitespace the grammar allows, a chat wrapper's call suffix)
 * are left out, so the pieces taken join to exactly the object's text.
 */
export class JsonObjectText {
  #started = false;
  #done = false;
  #depth = 0;
  #inString = false;
  #escaped = false;

  /** Whether the object's closing brace was taken. */
  get done(): boolean {
    return this.#done;
  }

  /** The part of `piece` that belongs to the object. */
  take(piece: string): string {
    let out = "";
    for (const char of piece) {
      if (this.#done) break;
      if (!this.#started) {
        if (char !== "{") continue;
        this.#started = true;
      }
      out += char;
      if (this.#inString) {
        if (this.#escaped) this.#escaped = false;
        else if (char === "\\") this.#escaped = true;
        else if (char === '"') this.#inString = false;
        continue;
      }
      if (char === '"') this.#inString = true;
      else if (char === "{" || char === "[") this.#depth += 1;
      else if (char === "}" || char === "]") {
        this.#depth -= 1;
        if (this.#depth === 0) this.#done = true;
      }
    }
    return out;
  }
}
