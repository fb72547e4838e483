import { inspect } from "node:util";
import { ConfigError } from "../errors/index.js";
import { type DecryptOptions, type EncryptOptions, FernetKey, InvalidKeyError } from "./fernet.js";

/**
 * The keys a deployment accepts, for rotation without downtime: the first key encrypts, every key
 * decrypts. To rotate, put the new key first, keep the old one after it until no token made with
 * it is still in flight, then drop it.
 */
export class KeyRing {
  readonly #keys: readonly FernetKey[];

  /** @param keys At least one key; the first is the one that encrypts. */
  constructor(keys: readonly FernetKey[]) {
    if (keys.length === 0) throw new RangeError("a KeyRing needs at least one key");
    this.#keys = Object.freeze([...keys]);
  }

  /**
   * Parses a comma-separated list of keys (spaces around entries are ignored), as read from an
   * environment variable. Throws a {@link ConfigError} ({@link InvalidKeyError} for an entry that
   * is not a key) naming `variableName` and the 1-based entry, never the key text.
   */
  static parse(list: string, variableName = "ENCRYPTION_KEY"): KeyRing {
    if (typeof list !== "string" || list.trim() === "") {
      throw new ConfigError(`${variableName} must list at least one Fernet key`);
    }
    const entries = list.split(",").map((entry) => entry.trim());
    const keys: FernetKey[] = [];
    for (const [index, entry] of entries.entries()) {
      const subject = `${variableName} entry ${index + 1} of ${entries.length}`;
      if (entry === "") {
        throw new ConfigError(`${subject} is empty: separate keys with single commas`);
      }
      const key = parseEntry(entry, subject);
      const first = keys.findIndex((known) => known.equals(key));
      if (first !== -1) {
        throw new ConfigError(`${subject} repeats entry ${first + 1}: list each key once`);
      }
      keys.push(key);
    }
    return new KeyRing(keys);
  }

  /** Every key, the primary first. */
  get keys(): readonly FernetKey[] {
    return this.#keys;
  }

  /** How many keys decrypt. */
  get size(): number {
    return this.#keys.length;
  }

  /** The key that encrypts. */
  get primary(): FernetKey {
    // The constructor guarantees at least one key.
    return this.#keys[0] as FernetKey;
  }

  /** Encrypts with the primary key. See {@link FernetKey.encrypt}. */
  encrypt(data: Uint8Array | string, options?: EncryptOptions): string {
    return this.primary.encrypt(data, options);
  }

  /** Decrypts with whichever key signed the token; one `InvalidTokenError` for every failure. */
  decrypt(token: string, options?: DecryptOptions): Buffer {
    return FernetKey.decryptWithAny(this.#keys, token, options);
  }

  toJSON(): string {
    return this.#describe();
  }

  [inspect.custom](): string {
    return this.#describe();
  }

  #describe(): string {
    return `KeyRing(${this.#keys.length} ${this.#keys.length === 1 ? "key" : "keys"}, <redacted>)`;
  }
}

function parseEntry(entry: string, subject: string): FernetKey {
  try {
    return FernetKey.parse(entry);
  } catch {
    throw new InvalidKeyError(subject);
  }
}
