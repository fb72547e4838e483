import {
  createCipheriv,
  createDecipheriv,
  createHmac,
  randomBytes,
  timingSafeEqual,
} from "node:crypto";
import { inspect } from "node:util";
import { ConfigError, DecryptFailedError } from "../errors/index.js";

// Token layout (https://github.com/fernet/spec): version | timestamp | IV | ciphertext | HMAC.
const VERSION = 0x80;
const TIMESTAMP_OFFSET = 1;
const IV_OFFSET = 9;
const IV_BYTES = 16;
const CIPHERTEXT_OFFSET = IV_OFFSET + IV_BYTES;
const BLOCK_BYTES = 16;
const MAC_BYTES = 32;
const KEY_HALF_BYTES = 16;
const MAX_CLOCK_SKEW_SECONDS = 60n;

// Strict base64url: url-safe alphabet, padding optional but, if present, exactly right.
const TOKEN_TEXT = /^[A-Za-z0-9_-]*={0,2}$/;
// Python's `Fernet(key)` also accepts the standard `+/` alphabet, so we do too. It also silently
// drops any other character (whitespace, junk); we refuse those.
const KEY_TEXT = /^[A-Za-z0-9_+/-]{43}=$/;
const REDACTED = "FernetKey(<redacted>)";

/**
 * The only error a token can cause, whatever is wrong with it (encoding, version, length, MAC,
 * padding, age): telling them apart would help an attacker and never the caller.
 */
export class InvalidTokenError extends DecryptFailedError {
  constructor() {
    super("the token is not a valid Fernet token for the configured key(s)");
  }
}

/** A text is not a Fernet key. The message names what was being parsed, never the text itself. */
export class InvalidKeyError extends ConfigError {
  /** @param subject What held the text, e.g. `ENCRYPTION_KEY entry 2 of 3` (default `the key`). */
  constructor(subject = "the key") {
    super(
      `${subject} is not a Fernet key: it must be 32 bytes encoded as url-safe base64 (44 characters)`,
    );
  }
}

export interface EncryptOptions {
  /** The token's timestamp: a Date, or whole seconds since the Unix epoch. Default: now. */
  now?: Date | number;
  /**
   * The 16-byte CBC IV. Default: 16 fresh random bytes. Only for reproducing test vectors: reusing
   * an IV under one key reveals which plaintexts share a prefix.
   */
  iv?: Uint8Array;
}

export interface DecryptOptions {
  /**
   * Maximum token age in seconds. Default: none, and then no time check at all. When set, as in
   * Python's `cryptography`, a token older than this or more than 60 s in the future is invalid.
   */
  ttlSeconds?: number;
  /** The time `ttlSeconds` is checked against: a Date or Unix seconds. Default: now. */
  now?: Date | number;
}

interface TokenParts {
  signed: Buffer;
  mac: Buffer;
  timestamp: bigint;
  iv: Buffer;
  ciphertext: Buffer;
}

/**
 * A Fernet key (32 bytes: signing key, then encryption key) and the operations that use it.
 * The key material lives in private fields so that logging the object cannot reveal it.
 */
export class FernetKey {
  readonly #signingKey: Buffer;
  readonly #encryptionKey: Buffer;

  private constructor(bytes: Buffer) {
    this.#signingKey = Buffer.from(bytes.subarray(0, KEY_HALF_BYTES));
    this.#encryptionKey = Buffer.from(bytes.subarray(KEY_HALF_BYTES));
  }

  /**
   * Parses the 44-character form `Fernet.generate_key()` prints (url-safe base64 with `=`).
   * The standard `+/` alphabet is accepted like Python does; whitespace and other characters are
   * not. Throws {@link InvalidKeyError}, whose message never contains `text`.
   */
  static parse(text: string): FernetKey {
    if (typeof text !== "string" || !KEY_TEXT.test(text)) throw new InvalidKeyError();
    const bytes = Buffer.from(text, "base64");
    if (bytes.length !== 2 * KEY_HALF_BYTES) throw new InvalidKeyError();
    return new FernetKey(bytes);
  }

  /** A new key from the system's secure random source. */
  static generate(): FernetKey {
    return new FernetKey(randomBytes(2 * KEY_HALF_BYTES));
  }

  /**
   * Decrypts `token` with whichever of `keys` it was signed with (MultiFernet semantics).
   * Throws {@link InvalidTokenError} for every kind of bad token, and `RangeError` for bad options.
   */
  static decryptWithAny(
    keys: readonly FernetKey[],
    token: string,
    options: DecryptOptions = {},
  ): Buffer {
    const window = timeWindow(options);
    const parts = splitToken(token);
    for (const key of keys) {
      if (!key.#signed(parts)) continue;
      if (window !== undefined && isOutside(parts.timestamp, window)) break;
      const plaintext = key.#decipher(parts);
      if (plaintext !== undefined) return plaintext;
    }
    throw new InvalidTokenError();
  }

  /**
   * The time a token says it was made, in Unix seconds. The token is NOT verified here: only trust
   * the answer for a token that decrypted (its MAC covers the timestamp). `undefined` when `token`
   * is not shaped like a Fernet token.
   */
  static issuedAt(token: string): number | undefined {
    try {
      return Number(splitToken(token).timestamp);
    } catch {
      return undefined;
    }
  }

  /** Encrypts `data` (a string is encoded as UTF-8) into a url-safe base64 token with padding. */
  encrypt(data: Uint8Array | string, options: EncryptOptions = {}): string {
    const plaintext = typeof data === "string" ? Buffer.from(data, "utf8") : data;
    if (!(plaintext instanceof Uint8Array))
      throw new TypeError("data must be a Uint8Array or string");
    const iv = options.iv ?? randomBytes(IV_BYTES);
    if (iv.length !== IV_BYTES) throw new RangeError(`iv must be ${IV_BYTES} bytes`);
    const header = Buffer.alloc(IV_OFFSET);
    header[0] = VERSION;
    header.writeBigUInt64BE(
      BigInt(unixSeconds(options.now ?? new Date(), "now")),
      TIMESTAMP_OFFSET,
    );
    const cipher = createCipheriv("aes-128-cbc", this.#encryptionKey, iv);
    const signed = Buffer.concat([header, iv, cipher.update(plaintext), cipher.final()]);
    const mac = createHmac("sha256", this.#signingKey).update(signed).digest();
    return toPaddedBase64Url(Buffer.concat([signed, mac]));
  }

  /** Decrypts a token made with this key. See {@link FernetKey.decryptWithAny}. */
  decrypt(token: string, options?: DecryptOptions): Buffer {
    return FernetKey.decryptWithAny([this], token, options);
  }

  /**
   * HMAC-SHA256 of `label` under the key's signing half: a value derived from the key that does
   * not reveal it (see `client-token.ts`). `label` must not start with byte 0x80, Fernet's
   * version byte, so that no derived value can stand for a token's MAC.
   */
  derive(label: string): Buffer {
    if (label.charCodeAt(0) === VERSION) throw new RangeError("label must not start with 0x80");
    return createHmac("sha256", this.#signingKey).update(label, "utf8").digest();
  }

  /** Whether both keys hold the same material (compared in constant time). */
  equals(other: FernetKey): boolean {
    return (
      timingSafeEqual(this.#signingKey, other.#signingKey) &&
      timingSafeEqual(this.#encryptionKey, other.#encryptionKey)
    );
  }

  /**
   * The key in the format {@link FernetKey.parse} reads and Python's `Fernet.generate_key()`
   * writes. This is the secret itself: call it only to store or hand over the key, never to log
   * it. (`toString()` is redacted, so a key in a template string cannot leak by accident.)
   */
  exportKey(): string {
    return toPaddedBase64Url(Buffer.concat([this.#signingKey, this.#encryptionKey]));
  }

  /** Redacted: use {@link FernetKey.exportKey} to get the key itself. */
  toString(): string {
    return REDACTED;
  }

  /**
   * Redacted rather than throwing: a key that reaches a logger or an error report must neither
   * leak nor turn a log line into a crash. Store a key with {@link FernetKey.exportKey}.
   */
  toJSON(): string {
    return REDACTED;
  }

  [inspect.custom](): string {
    return REDACTED;
  }

  #signed(parts: TokenParts): boolean {
    const mac = createHmac("sha256", this.#signingKey).update(parts.signed).digest();
    return timingSafeEqual(mac, parts.mac);
  }

  #decipher(parts: TokenParts): Buffer | undefined {
    const decipher = createDecipheriv("aes-128-cbc", this.#encryptionKey, parts.iv);
    try {
      return Buffer.concat([decipher.update(parts.ciphertext), decipher.final()]);
    } catch {
      return undefined; // bad PKCS7 padding
    }
  }
}

function splitToken(token: unknown): TokenParts {
  const bytes = typeof token === "string" ? decodeBase64Url(token) : undefined;
  const ciphertextBytes = (bytes?.length ?? 0) - CIPHERTEXT_OFFSET - MAC_BYTES;
  if (
    bytes === undefined ||
    bytes[0] !== VERSION ||
    ciphertextBytes <= 0 ||
    ciphertextBytes % BLOCK_BYTES !== 0
  ) {
    throw new InvalidTokenError();
  }
  const macOffset = bytes.length - MAC_BYTES;
  return {
    signed: bytes.subarray(0, macOffset),
    mac: bytes.subarray(macOffset),
    timestamp: bytes.readBigUInt64BE(TIMESTAMP_OFFSET),
    iv: bytes.subarray(IV_OFFSET, CIPHERTEXT_OFFSET),
    ciphertext: bytes.subarray(CIPHERTEXT_OFFSET, macOffset),
  };
}

/** Strict decoding: `undefined` unless `text` is exactly what {@link toPaddedBase64Url} (or the
 * same without padding) writes, so each token has one spelling. */
function decodeBase64Url(text: string): Buffer | undefined {
  if (!TOKEN_TEXT.test(text)) return undefined;
  const body = text.replace(/=+$/, "");
  if (body.length !== text.length && text.length % 4 !== 0) return undefined;
  const bytes = Buffer.from(body, "base64url");
  return bytes.toString("base64url") === body ? bytes : undefined;
}

function toPaddedBase64Url(bytes: Buffer): string {
  const text = bytes.toString("base64url");
  return text + "=".repeat((4 - (text.length % 4)) % 4);
}

interface TimeWindow {
  nowSeconds: bigint;
  ttlSeconds: bigint;
}

function timeWindow(options: DecryptOptions): TimeWindow | undefined {
  const { ttlSeconds } = options;
  if (ttlSeconds === undefined) return undefined;
  if (!Number.isSafeInteger(ttlSeconds) || ttlSeconds < 0) {
    throw new RangeError("ttlSeconds must be a whole number of seconds >= 0");
  }
  const nowSeconds = unixSeconds(options.now ?? new Date(), "now");
  return { nowSeconds: BigInt(nowSeconds), ttlSeconds: BigInt(ttlSeconds) };
}

/** Python `cryptography`'s rule: expired, or further in the future than the allowed clock skew. */
function isOutside(timestamp: bigint, { nowSeconds, ttlSeconds }: TimeWindow): boolean {
  return timestamp + ttlSeconds < nowSeconds || nowSeconds + MAX_CLOCK_SKEW_SECONDS < timestamp;
}

function unixSeconds(time: Date | number, name: string): number {
  const seconds = time instanceof Date ? Math.floor(time.getTime() / 1000) : time;
  if (!Number.isSafeInteger(seconds) || seconds < 0) {
    throw new RangeError(`${name} must be a valid Date or whole seconds since the Unix epoch`);
  }
  return seconds;
}
