import { mkdir, readFile, stat, writeFile } from "node:fs/promises";
import path from "node:path";
import { FernetKey, KeyRing } from "../crypto/index.js";
import { ConfigError } from "../errors/index.js";
import type { Logger } from "../log.js";
import type { Config } from "./config.js";

/** Where a local deployment keeps the key it generated, when `ENCRYPTION_KEY` is unset. */
export function localKeyFilePath(dataDir: string): string {
  return path.join(dataDir, "encryption.key");
}

/**
 * The key ring to use: `ENCRYPTION_KEY` when set; in local mode otherwise the key in the local key
 * file, created (mode 0600) on first use. Both processes of a local stack and the reference client
 * read the same file. The key itself is never logged, only the file's path.
 */
export async function resolveKeyRing(config: Config, log: Logger): Promise<KeyRing> {
  if (config.keyRing !== undefined) return config.keyRing;
  if (config.mode !== "local") {
    throw new ConfigError("ENCRYPTION_KEY must be set when running as a RunPod worker");
  }
  const file = localKeyFilePath(config.dataDir);
  const created = await createKeyFileIfMissing(file);
  if (created) log.info("generated a new encryption key (ENCRYPTION_KEY is unset)", { file });
  else log.info("using the local encryption key (ENCRYPTION_KEY is unset)", { file });
  if (((await stat(file)).mode & 0o077) !== 0) {
    log.warn("the key file can be read by other users: chmod 600 it", { file });
  }
  return readKeyFile(file);
}

/** Reads a key file: one key, or a comma-separated list like `ENCRYPTION_KEY`. */
export async function readKeyFile(file: string): Promise<KeyRing> {
  return KeyRing.parse((await readFile(file, "utf8")).trim(), `the key file ${file}`);
}

async function createKeyFileIfMissing(file: string): Promise<boolean> {
  await mkdir(path.dirname(file), { recursive: true, mode: 0o700 });
  try {
    // "wx" fails if the file exists, so two processes starting together keep one key.
    await writeFile(file, `${FernetKey.generate().exportKey()}\n`, { flag: "wx", mode: 0o600 });
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "EEXIST") return false;
    throw error;
  }
}
