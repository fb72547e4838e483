import { localKeyFilePath, readKeyFile } from "../../shared/config/index.js";
import { KeyRing } from "../../shared/crypto/index.js";
import { PoolError } from "../../shared/errors/index.js";
import { UsageError } from "./client-errors.js";

/** Where the client may find the key, in order of preference. */
export interface KeySources {
  /** `--key-file`. */
  keyFile: string | undefined;
  /** `ENCRYPTION_KEY`: a comma-separated list whose first key encrypts. */
  envKey: string | undefined;
  /** The local stack's data folder (`DATA_DIR`, else `<package>/.data`), holding its key file. */
  dataDir: string;
}

/**
 * The key ring to encrypt with: `--key-file`, else `ENCRYPTION_KEY`, else the local stack's key
 * file. Throws a {@link UsageError} saying where it looked; messages name files and variables,
 * never key text.
 */
export async function resolveClientKey(sources: KeySources): Promise<KeyRing> {
  if (sources.keyFile !== undefined)
    return readKey(sources.keyFile, `--key-file ${sources.keyFile}`);
  const envKey = sources.envKey?.trim();
  if (envKey !== undefined && envKey !== "") {
    try {
      return KeyRing.parse(envKey, "ENCRYPTION_KEY");
    } catch (error) {
      throw asUsageError(error);
    }
  }
  const localFile = localKeyFilePath(sources.dataDir);
  try {
    return await readKeyFile(localFile);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "ENOENT")
      throw asUsageError(error, `the local key file ${localFile}`);
    throw new UsageError(
      `no encryption key: no --key-file given, ENCRYPTION_KEY is unset, and there is no local key file at ${localFile} ` +
        "(the local stack creates it on its first start when ENCRYPTION_KEY is unset; " +
        "for another pool pass --key-file FILE or set ENCRYPTION_KEY to its key)",
      { pointToHelp: false },
    );
  }
}

async function readKey(file: string, what: string): Promise<KeyRing> {
  try {
    return await readKeyFile(file);
  } catch (error) {
    throw asUsageError(error, what);
  }
}

/** @param what The key's source for the message, e.g. `--key-file /path`. */
function asUsageError(error: unknown, what = "the key"): UsageError {
  // A PoolError's message names the file or variable and the rule, never the key.
  if (error instanceof PoolError) {
    return new UsageError(error.message, { cause: error, pointToHelp: false });
  }
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  const reason =
    code === "ENOENT"
      ? "no such file"
      : code === "EACCES" || code === "EPERM"
        ? "permission denied"
        : code === "EISDIR"
          ? "it is a directory"
          : (code ?? "unreadable");
  return new UsageError(`cannot read ${what} (${reason})`, { cause: error, pointToHelp: false });
}
