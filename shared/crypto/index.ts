export {
  type DecryptOptions,
  type EncryptOptions,
  FernetKey,
  InvalidKeyError,
  InvalidTokenError,
} from "./fernet.js";
export { KeyRing } from "./key-ring.js";
export { maxClockSkewSeconds, type TokenAge, tokenAge } from "./replay-window.js";
