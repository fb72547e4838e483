import { ConfigError } from "../errors/index.js";
import { FernetKey, InvalidKeyError } from "./fernet.js";
import { KeyRing } from "./key-ring.js";

/** A client's name: not secret (it travels in the clear beside `encrypted_input`). */
export const clientNamePattern = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

/**
 * The named clients of a pool (`CLIENT_KEYS_FILE`), each with its own key ring (the first key
 * seals its outputs, every key opens its requests). A lookup is one `Map` read, whatever the
 * number of clients.
 */
export class ClientKeys {
  readonly #rings: ReadonlyMap<string, KeyRing>;

  constructor(rings: ReadonlyMap<string, KeyRing>) {
    this.#rings = rings;
  }

  /** No named client: only the anonymous one (`ENCRYPTION_KEY`). */
  static readonly none = new ClientKeys(new Map());

  /** The ring of a client, `undefined` for a name that is not there. */
  ringOf(name: string): KeyRing | undefined {
    return this.#rings.get(name);
  }

  get size(): number {
    return this.#rings.size;
  }

  /** The names, in file order. */
  get names(): string[] {
    return [...this.#rings.keys()];
  }

  toJSON(): string {
    return `ClientKeys(${this.#rings.size} clients, <redacted>)`;
  }
}

/**
 * Parses a keys file's text: one client a line, `name=key[,older key…]`; `#` comments and blank
 * lines are skipped. A duplicate name, a key used twice (in the file, or equal to one of
 * `poolRing`'s), a bad name or a bad key is a {@link ConfigError} naming `file` and the line
 * number, never the key text.
 */
export function parseClientKeys(text: string, file: string, poolRing?: KeyRing): ClientKeys {
  const rings = new Map<string, KeyRing>();
  // Keys by their text, to find one used twice (two clients must never open each other's tokens).
  const used = new Map<string, string>();
  for (const key of poolRing?.keys ?? []) used.set(key.exportKey(), "ENCRYPTION_KEY");
  const lines = text.split(/\r?\n/);
  for (const [index, raw] of lines.entries()) {
    const line = raw.trim();
    if (line === "" || line.startsWith("#")) continue;
    const where = `${file} line ${index + 1}`;
    const equals = line.indexOf("=");
    if (equals === -1) throw new ConfigError(`${where} must be name=key[,older key...]`);
    const name = line.slice(0, equals).trim();
    if (!clientNamePattern.test(name)) {
      throw new ConfigError(
        `${where}: a client name is 1-64 letters, digits, ".", "_" or "-", starting with a letter or digit`,
      );
    }
    if (rings.has(name)) throw new ConfigError(`${where} repeats the client "${name}"`);
    const entries = line
      .slice(equals + 1)
      .split(",")
      .map((entry) => entry.trim());
    const keys: FernetKey[] = [];
    for (const [position, entry] of entries.entries()) {
      const subject = `${where} key ${position + 1} of ${entries.length}`;
      let key: FernetKey;
      try {
        key = FernetKey.parse(entry);
      } catch {
        throw new InvalidKeyError(subject);
      }
      const text = key.exportKey();
      const holder = used.get(text);
      if (holder !== undefined) {
        throw new ConfigError(
          `${subject} is already used by ${holder}: give each client its own key`,
        );
      }
      used.set(text, `the client "${name}"`);
      keys.push(key);
    }
    rings.set(name, new KeyRing(keys));
  }
  return new ClientKeys(rings);
}
