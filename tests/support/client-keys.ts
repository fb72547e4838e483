/**
 * Named clients for a test stack: a `CLIENT_KEYS_FILE` (mode 0600) in a folder of the test's own,
 * and for each client its key ring, its `X-Client-Token` and a real {@link PoolClient}.
 */
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { PoolClient } from "../../client/index.js";
import { clientTokenHeader, clientTokenOf, FernetKey, KeyRing } from "../../shared/crypto/index.js";

export interface TestClient {
  name: string;
  ring: KeyRing;
  /** The primary key's text (what the client's machine holds as ENCRYPTION_KEY). */
  key: string;
  /** Its `X-Client-Token` header. */
  headers: Record<string, string>;
  /** Encrypts a request under its key, naming it: a job input. */
  input(request: unknown): { encrypted_input: string; client: string };
  /** A real client of the pool at `url`, as this client. */
  poolClient(url: string): PoolClient;
}

export function testClient(name: string, keys = [FernetKey.generate()]): TestClient {
  const ring = new KeyRing(keys);
  return {
    name,
    ring,
    key: ring.primary.exportKey(),
    headers: { [clientTokenHeader]: clientTokenOf(ring.primary) },
    input: (request) => ({ encrypted_input: ring.encrypt(JSON.stringify(request)), client: name }),
    poolClient: (url) => new PoolClient({ baseUrl: url, keyRing: ring, client: name }),
  };
}

/** The text of a keys file naming `clients`, one line each. */
export function keysFileText(clients: readonly TestClient[]): string {
  const lines = clients.map(
    (client) => `${client.name}=${client.ring.keys.map((key) => key.exportKey()).join(",")}`,
  );
  return `# test clients\n${lines.join("\n")}\n`;
}

/** A keys file in a folder of its own; `remove()` deletes both. */
export async function writeKeysFile(clients: readonly TestClient[]): Promise<{
  file: string;
  write(clients: readonly TestClient[]): Promise<void>;
  remove(): Promise<void>;
}> {
  const dir = await mkdtemp(path.join(os.tmpdir(), "client-keys-"));
  const file = path.join(dir, "clients.keys");
  const write = (list: readonly TestClient[]) =>
    writeFile(file, keysFileText(list), { mode: 0o600 });
  await write(clients);
  return { file, write, remove: () => rm(dir, { recursive: true, force: true }) };
}
