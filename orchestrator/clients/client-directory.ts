import { type FSWatcher, watch } from "node:fs";
import path from "node:path";
import { readClientKeysFile } from "../../shared/config/index.js";
import { ClientKeys, type KeyRing } from "../../shared/crypto/index.js";
import { messageOf } from "../../shared/errors/index.js";
import type { Logger } from "../../shared/log.js";
import type { ClientRings } from "../admission/admit-request.js";

/** Changes of the keys file closer together than this are read once. */
const reloadDebounceMs = 200;

/**
 * The named clients of this orchestrator (`CLIENT_KEYS_FILE`), read at start and again on
 * {@link reload} (SIGHUP) or when the file changes: a removed client is refused from then on,
 * others see no change, and jobs already accepted keep the ring they were admitted with. A file
 * that no longer reads keeps the old table (the reason is logged, never a key).
 */
export class ClientDirectory implements ClientRings {
  readonly #file: string | undefined;
  readonly #poolRing: KeyRing;
  readonly #log: Logger;
  #keys: ClientKeys;
  #watcher: FSWatcher | undefined;
  #timer: NodeJS.Timeout | undefined;
  #reloading: Promise<void> = Promise.resolve();

  private constructor(file: string | undefined, poolRing: KeyRing, keys: ClientKeys, log: Logger) {
    this.#file = file;
    this.#poolRing = poolRing;
    this.#keys = keys;
    this.#log = log;
  }

  /**
   * Reads the file (none: only the anonymous client). Throws the file's `ConfigError` (exit 2 at
   * start).
   */
  static async open(options: {
    file: string | undefined;
    poolRing: KeyRing;
    log: Logger;
  }): Promise<ClientDirectory> {
    const { file, poolRing, log } = options;
    const keys = file === undefined ? ClientKeys.none : await readClientKeysFile(file, poolRing);
    if (file !== undefined) log.info("client keys read", { file, clients: keys.size });
    return new ClientDirectory(file, poolRing, keys, log);
  }

  ringOf(name: string): KeyRing | undefined {
    return this.#keys.ringOf(name);
  }

  /** Reads the file again (one read at a time); a file that does not read keeps the old table. */
  reload(reason: string): Promise<void> {
    const file = this.#file;
    if (file === undefined) return Promise.resolve();
    this.#reloading = this.#reloading.then(async () => {
      try {
        const keys = await readClientKeysFile(file, this.#poolRing);
        const before = new Set(this.#keys.names);
        const removed = [...before].filter((name) => keys.ringOf(name) === undefined);
        const added = keys.names.filter((name) => !before.has(name));
        this.#keys = keys;
        this.#log.info("client keys reloaded", {
          reason,
          clients: keys.size,
          added: added.join(",") || undefined,
          removed: removed.join(",") || undefined,
        });
      } catch (error) {
        this.#log.error("client keys not reloaded: the old ones stay in use", {
          reason,
          error: messageOf(error),
        });
      }
    });
    return this.#reloading;
  }

  /**
   * Reloads when the file changes. The folder is watched, not the file: an editor or `mv` that
   * replaces the file would end a watch of the old one.
   */
  watch(): void {
    const file = this.#file;
    if (file === undefined || this.#watcher !== undefined) return;
    const name = path.basename(file);
    try {
      this.#watcher = watch(path.dirname(file), (_event, changed) => {
        if (changed !== null && changed !== name) return;
        clearTimeout(this.#timer);
        this.#timer = setTimeout(() => void this.reload("file changed"), reloadDebounceMs);
        this.#timer.unref();
      });
      this.#watcher.on("error", (error) =>
        this.#log.warn("cannot watch the client keys file: reload it with SIGHUP", {
          error: messageOf(error),
        }),
      );
      this.#watcher.unref();
    } catch (error) {
      this.#log.warn("cannot watch the client keys file: reload it with SIGHUP", {
        error: messageOf(error),
      });
    }
  }

  /** Stops watching (idempotent). */
  async close(): Promise<void> {
    clearTimeout(this.#timer);
    this.#watcher?.close();
    this.#watcher = undefined;
    await this.#reloading;
  }
}
