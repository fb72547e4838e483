import { ConfigError } from "./errors.js";

/** Whether a `listen()` failed because the address is taken (`EADDRINUSE`). */
export function isAddressInUse(error: unknown): boolean {
  return (error as NodeJS.ErrnoException | undefined)?.code === "EADDRINUSE";
}

/**
 * For `server.listen(...).catch(...)` in an entry point: a port in use becomes a
 * {@link ConfigError} naming the variable that sets it (`PORT 8000 on 127.0.0.1 is in use: set
 * PORT to a free port`), so the process exits as for any bad setting; any other error is rethrown
 * as it is.
 */
export function explainListenError(
  variable: string,
  host: string,
  port: number,
): (error: unknown) => never {
  return (error) => {
    if (isAddressInUse(error)) {
      throw new ConfigError(
        `${variable} ${port} on ${host} is in use: set ${variable} to a free port`,
      );
    }
    throw error;
  };
}
