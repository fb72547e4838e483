/**
 * `npm start`'s launcher (`scripts/start.js`) as tests and benchmarks run it: a clean environment
 * (the CPU backend, one llama thread) plus what each caller sets.
 */
import { type ChildProcess, spawn } from "node:child_process";
import os from "node:os";
import { fileURLToPath } from "node:url";

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
  const output: string[] = [];
  for (const stream of [launcher.stdout, launcher.stderr]) {
    stream.setEncoding("utf8").on("data", (text: string) => output.push(text));
  }
  const exited = new Promise<number | null>((resolve) => launcher.once("exit", resolve));
  return { launcher, output, exited };
}
