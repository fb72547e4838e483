import { messageOf, PoolError } from "../errors/index.js";
import type { Logger } from "../log.js";
import { onLauncherGone } from "./launcher-gone.js";
import { announceReady } from "./ready-signal.js";
import { onStopSignals } from "./stop-signals.js";

/** Something an entry point started and must close on the way out. */
export interface Closable {
  close(): Promise<void>;
}

export interface EntryPointOptions {
  /**
   * `SHUTDOWN_TIMEOUT_MS`. Every close step bounds its own waits (running jobs get this long,
   * Redis a short grace after), so a shutdown ends a little after it; if one has not ended
   * {@link shutdownBackstopMarginMs} after it, a close step hangs (a bug) and the process exits 1
   * rather than never.
   */
  shutdownTimeoutMs: number;
}

/** How long past `SHUTDOWN_TIMEOUT_MS` a shutdown may run before the process exits 1 anyway. */
export const shutdownBackstopMarginMs = 30_000;

/**
 * Runs an entry point: starts it, closes what it started in reverse order on SIGINT/SIGTERM, or
 * when the `npm start` launcher that started it is gone (exit 0, also when a close step had to
 * give up waiting for Redis: that is logged), and on a startup failure prints the coded message
 * and exits non-zero (2 for bad configuration). A second signal (past the second in which a
 * Ctrl-C under npm arrives twice, see `stop-signals.ts`) exits at once (130); a
 * shutdown still running {@link shutdownBackstopMarginMs} past `SHUTDOWN_TIMEOUT_MS` exits 1.
 */
export async function runEntryPoint(
  log: Logger,
  options: EntryPointOptions,
  start: (closables: Closable[]) => Promise<void>,
): Promise<void> {
  const closables: Closable[] = [];
  let stopping = false;
  const stop = async (exitCode: number) => {
    const backstopMs = options.shutdownTimeoutMs + shutdownBackstopMarginMs;
    setTimeout(() => {
      log.error("shutdown did not finish in time: exiting", { waitedMs: backstopMs });
      process.exit(1);
    }, backstopMs).unref();
    for (const closable of closables.reverse()) {
      try {
        await closable.close();
      } catch (error) {
        log.error("error while stopping", {
          error: messageOf(error),
        });
      }
    }
    process.exit(exitCode);
  };
  const force = (signal: NodeJS.Signals) => {
    log.warn("second signal: exiting now", { signal });
    process.exit(130);
  };
  onStopSignals({
    stop(signal) {
      // Already stopping (a failed start, the launcher gone): a signal now insists.
      if (stopping) force(signal);
      stopping = true;
      log.info("stopping", { signal });
      void stop(0);
    },
    force,
  });
  onLauncherGone(() => {
    if (stopping) return;
    stopping = true;
    log.warn("the launcher that started this process is gone (its IPC channel closed): stopping");
    void stop(0);
  });
  try {
    await start(closables);
    announceReady();
  } catch (error) {
    if (error instanceof PoolError) log.error(error.message, { code: error.code });
    else
      log.error("failed to start", { error: error instanceof Error ? error.stack : String(error) });
    stopping = true;
    await stop(error instanceof PoolError && error.code === "CONFIG_INVALID" ? 2 : 1);
  }
}
