/**
 * `npm run generate-key`: prints a new Fernet key (32 random bytes, url-safe base64) for
 * `ENCRYPTION_KEY`. It goes to stdout only, so it can be piped straight into a secret store.
 *
 * `npm run generate-key -- --client NAME [--keys-file PATH] [--rotate]`: also appends `NAME=key`
 * to the pool's client keys file (default `$CLIENT_KEYS_FILE`; created with mode 0600), or with
 * `--rotate` puts the new key first on NAME's line (its older keys stay, to be dropped later).
 * The key is printed once, for the client; the orchestrator reads the file again on its change.
 */
import { randomUUID } from "node:crypto";
import { readFile, rename, stat, writeFile } from "node:fs/promises";
import path from "node:path";
import { parseArgs } from "node:util";
import { clientNamePattern, FernetKey, parseClientKeys } from "../shared/crypto/index.js";
import { messageOf } from "../shared/errors/index.js";

const key = FernetKey.generate().exportKey();

try {
  const { values } = parseArgs({
    args: process.argv.slice(2),
    options: {
      client: { type: "string" },
      "keys-file": { type: "string" },
      rotate: { type: "boolean" },
    },
    strict: true,
  });
  if (values.client !== undefined) {
    const file = values["keys-file"] ?? process.env.CLIENT_KEYS_FILE?.trim();
    if (file === undefined || file === "") {
      throw new Error("--client needs --keys-file PATH or CLIENT_KEYS_FILE");
    }
    await addClientKey(path.resolve(file), values.client, values.rotate === true);
  } else if (values.rotate || values["keys-file"] !== undefined) {
    throw new Error("--keys-file and --rotate go with --client NAME");
  }
  process.stdout.write(`${key}\n`);
} catch (error) {
  process.stderr.write(`generate-key: ${messageOf(error)}\n`);
  process.exit(2);
}

async function addClientKey(file: string, name: string, rotate: boolean): Promise<void> {
  if (!clientNamePattern.test(name)) {
    throw new Error(
      '--client must be 1-64 letters, digits, ".", "_" or "-", starting with a letter or digit',
    );
  }
  let text = "";
  try {
    text = await readFile(file, "utf8");
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "ENOENT") throw error;
  }
  // The file as it is must be valid: an error names the line, never a key.
  const known = parseClientKeys(text, file).ringOf(name) !== undefined;
  if (known && !rotate) {
    throw new Error(`the client "${name}" is in ${file} already: --rotate gives it a new key`);
  }
  if (!known && rotate) throw new Error(`the client "${name}" is not in ${file}`);
  const lines = text === "" ? [] : text.replace(/\n$/, "").split("\n");
  if (rotate) {
    const index = lines.findIndex((line) => line.split("=", 1)[0]?.trim() === name);
    const keys = (lines[index] as string).slice((lines[index] as string).indexOf("=") + 1).trim();
    lines[index] = `${name}=${key},${keys}`;
  } else {
    lines.push(`${name}=${key}`);
  }
  const mode = await stat(file).then(
    (stats) => stats.mode & 0o777,
    () => 0o600,
  );
  // Written beside it and renamed over it: the orchestrator never reads half a file.
  const temporary = path.join(path.dirname(file), `.${path.basename(file)}.${randomUUID()}`);
  await writeFile(temporary, `${lines.join("\n")}\n`, { mode: mode & 0o700, flag: "wx" });
  await rename(temporary, file);
}
