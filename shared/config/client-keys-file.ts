import { readFile, stat } from "node:fs/promises";
import { type ClientKeys, type KeyRing, parseClientKeys } from "../crypto/index.js";
import { ConfigError } from "../errors/index.js";

/**
 * Reads `CLIENT_KEYS_FILE`: a file that group or others may read or write (mode & 0o077) is
 * refused, since it holds every client's keys. Throws a {@link ConfigError} naming the file (and
 * the line), never a key.
 */
export async function readClientKeysFile(file: string, poolRing: KeyRing): Promise<ClientKeys> {
  let text: string;
  try {
    const mode = (await stat(file)).mode;
    if ((mode & 0o077) !== 0) {
      throw new ConfigError(
        `CLIENT_KEYS_FILE ${file} has mode ${(mode & 0o777).toString(8)}: it holds keys, so it must be readable by its owner only (chmod 600 ${file})`,
      );
    }
    text = await readFile(file, "utf8");
  } catch (error) {
    if (error instanceof ConfigError) throw error;
    throw new ConfigError(
      `CLIENT_KEYS_FILE ${file} cannot be read (${(error as NodeJS.ErrnoException).code ?? "error"})`,
    );
  }
  return parseClientKeys(text, `CLIENT_KEYS_FILE ${file}`, poolRing);
}
