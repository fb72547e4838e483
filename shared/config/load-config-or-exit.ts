import { ConfigError } from "../errors/index.js";
import type { Config } from "./config.js";
import { loadConfig } from "./load-config.js";

/**
 * For entry points: the parsed configuration, or the message on stderr (prefixed with
 * `component`) and exit code 2. The logger is made from the configuration, so it cannot be used
 * to report the configuration's own errors.
 */
export function loadConfigOrExit(component: string): Config {
  try {
    return loadConfig();
  } catch (error) {
    process.stderr.write(
      `${component}: ${error instanceof ConfigError ? error.message : String(error)}\n`,
    );
    process.exit(2);
  }
}
