export { readClientKeysFile } from "./client-keys-file.js";
export type * from "./config.js";
export { type ConfigHost, loadConfig } from "./load-config.js";
export { loadConfigOrExit } from "./load-config-or-exit.js";
export { localKeyFilePath, readKeyFile, resolveKeyRing } from "./local-key-file.js";
export { configuredRedis } from "./redis-topology.js";
