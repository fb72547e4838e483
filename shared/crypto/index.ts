export {
  type DecryptOptions,
  type EncryptOptions,
  FernetKey,
  InvalidKeyError,
  InvalidTokenError,
} from "./fernet.js";
export { KeyRing } from "./key-ring.js";
