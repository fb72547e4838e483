import { PoolError } from "../errors/index.js";
import type { Logger } from "../log.js";

/** Something an entry point started and must close on the way out. */
export interface Closable {
  close(): Promise<void>;
}

/**
 * Runs an entry point: starts it, closes what it started in reverse order on SIGINT/SIGTERM
 * (exit 0), and on a startup failure prints the coded message and exits non-zero (2 for bad
 * configuration). A second signal exits at once.
 */
export async function runEntryPoint(
  log: Logger,
  start: (closables: Closable[]) => Promise<void>,
): Promise<void> {
  const closables: Closable[] = [];
  let stopping = false;
  const stop = async (exitCode: number) => {
    for (const closable of closables.reverse()) {
      try {
        await closable.close();
      } catch (error) {
        log.error("error while stopping", {
          error: error instanceof Error ? error.message : "unknown",
        });
      }
    }
    process.exit(exitCode);
  };
  for (const signal of ["SIGINT", "SIGTERM"] as const) {
    process.on(signal, () => {
      if (stopping) {
        log.warn("second signal: exiting now", { signal });
        process.exit(130);
      }
      stopping = true;
      log.info("stopping", { signal });
      void stop(0);
    });
  }
  try {
    await start(closables);
  } catch (error) {
    if (error instanceof PoolError) log.error(error.message, { code: error.code });
    else
      log.error("failed to start", { error: error instanceof Error ? error.stack : String(error) });
    stopping = true;
    await stop(error instanceof PoolError && error.code === "CONFIG_INVALID" ? 2 : 1);
  }
}
