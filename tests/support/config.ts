import os from "node:os";
import type { Env } from "../../shared/config/env-readers.js";
import { type Config, type ConfigHost, loadConfig } from "../../shared/config/index.js";

/** A machine for in-process configurations: paths under the temp folder, 2 CPUs, no RunPod volume. */
export const testHost: ConfigHost = {
  cwd: os.tmpdir(),
  homeDir: os.tmpdir(),
  cpuCount: 2,
  runpodVolumeExists: false,
  packageRoot: os.tmpdir(),
};

/** The configuration a process would parse from `env`, on {@link testHost}. */
export function testConfig(env: Env): Config {
  return loadConfig(env, testHost);
}
