/**
 * How long after a stop signal another one counts as the same signal delivered twice, not as a
 * second one: under `npm start` (whose script `exec`s the launcher, so that a SIGTERM to npm
 * reaches it) a Ctrl-C arrives twice within milliseconds, from the terminal and forwarded by npm.
 */
export const repeatedSignalWindowMs = 1000;

export interface StopSignalHandlers {
  /** The first SIGINT or SIGTERM: stop in order (drain, then close). */
  stop(signal: NodeJS.Signals): void;
  /** A signal after that, past {@link repeatedSignalWindowMs}: the user insists; exit now. */
  force(signal: NodeJS.Signals): void;
}

/** Installs the SIGINT and SIGTERM handlers of an entry point. */
export function onStopSignals(handlers: StopSignalHandlers): void {
  let firstAt: number | undefined;
  for (const signal of ["SIGINT", "SIGTERM"] as const) {
    process.on(signal, () => {
      if (firstAt === undefined) {
        firstAt = performance.now();
        handlers.stop(signal);
      } else if (performance.now() - firstAt >= repeatedSignalWindowMs) {
        handlers.force(signal);
      }
    });
  }
}
