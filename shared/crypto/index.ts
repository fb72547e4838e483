export { ClientKeys, clientNamePattern, parseClientKeys } from "./client-keys.js";
export { clientTokenHeader, clientTokenOf, ringOwnsClientToken } from "./client-token.js";
export { FernetKey, InvalidKeyError, InvalidTokenError } from "./fernet.js";
export { KeyRing } from "./key-ring.js";
export { tokenAge } from "./replay-window.js";
