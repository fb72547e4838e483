/**
 * `npm start`'s launcher (`scripts/start.js`) as tests and benchmarks run it: a clean environment
 * (the CPU backend, one llama thread) plus what each caller sets. Or `npm start` itself, for what
 * npm adds (its handling of signals).
 */
import { type ChildProcess, type ChildProcessByStdio, spawn } from "node:child_process";
import os from "node:os";
import type { Readable } from "node:stream";
import { fileURLToPath } from "node:url";
import { packageRoot } from "../../shared/paths.js";

export const startEntry = fileURLToPath(new URL("../../scripts/start.js", import.meta.url));

/** The launcher's environment: only `PATH` and `HOME` of this process, then `env`. */
export function npmStartEnv(env: Record<string, string>): Record<string, string> {
  return {
    PATH: process.env.PATH ?? "",
    HOME: os.homedir(),
    LLAMA_GPU: "off",
    LLAMA_THREADS: "1",
    ...env,
  };
}

export interface NpmStart {
  launcher: ChildProcess;
  /** Its stdout and stderr, as they arrive. */
  output: string[];
  /** Its exit code (`null` when a signal ended it). */
  exited: Promise<number | null>;
}

/** Starts the launcher with {@link npmStartEnv}`(env)`, collecting its output. */
export function spawnNpmStart(env: Record<string, string>): NpmStart {
  const launcher = spawn(process.execPath, [startEntry], {
    env: npmStartEnv(env),
    stdio: ["ignore", "pipe", "pipe"],
  });
  return collected(launcher);
}

/**
 * Runs `npm start` in the package root with {@link npmStartEnv}`(env)`, collecting its output;
 * `launcher` is then the npm process. `ownGroup`: in a process group of its own, as a terminal
 * runs it (so a test can play Ctrl-C, a SIGINT to the whole group).
 */
export function spawnRealNpmStart(env: Record<string, string>, ownGroup = false): NpmStart {
  const npm = spawn("npm", ["start"], {
    cwd: packageRoot(),
    // No look for a newer npm (there is no network here) in the way.
    env: npmStartEnv({ npm_config_update_notifier: "false", ...env }),
    stdio: ["ignore", "pipe", "pipe"],
    detached: ownGroup,
  });
  return collected(npm);
}

function collected(launcher: ChildProcessByStdio<null, Readable, Readable>): NpmStart {
  const output: string[] = [];
  for (const stream of [launcher.stdout, launcher.stderr]) {
    stream.setEncoding("utf8").on("data", (text: string) => output.push(text));
  }
  const exited = new Promise<number | null>((resolve) => launcher.once("exit", resolve));
  return { launcher, output, exited };
}
