/**
 * An exclusive lock on one blob of the cache, so that processes sharing it (several workers on
 * one network volume, or two models of one process naming the same file) never write the same
 * partial file at once: `<blob>.lock`, created exclusively, its mtime refreshed while held. A
 * lock left by a process that died is taken over once it has not been refreshed for `staleMs`.
 */
import { open, rm, stat, utimes } from "node:fs/promises";
import { sleep } from "../../../shared/process/sleep.js";

export interface BlobLockOptions {
  /** A lock not refreshed for this long is stale. Default 30 s. */
  readonly staleMs?: number;
  /** Between looks at a lock held by someone else. Default 250 ms. */
  readonly pollMs?: number;
  /** Called once when the lock is held by someone else and this has to wait. */
  readonly onWait?: () => void;
}

export async function withBlobLock<T>(
  blobPath: string,
  work: () => Promise<T>,
  options: BlobLockOptions = {},
): Promise<T> {
  const lock = `${blobPath}.lock`;
  const staleMs = options.staleMs ?? 30_000;
  let waited = false;
  for (;;) {
    try {
      const handle = await open(lock, "wx");
      await handle.close();
      break;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error;
    }
    const info = await stat(lock).catch(() => undefined);
    if (info !== undefined && Date.now() - info.mtimeMs > staleMs) {
      await rm(lock, { force: true });
      continue;
    }
    if (!waited) options.onWait?.();
    waited = true;
    await sleep(options.pollMs ?? 250);
  }
  const refresh = setInterval(() => {
    const now = new Date();
    utimes(lock, now, now).catch(() => {});
  }, staleMs / 3);
  refresh.unref();
  try {
    return await work();
  } finally {
    clearInterval(refresh);
    await rm(lock, { force: true });
  }
}
