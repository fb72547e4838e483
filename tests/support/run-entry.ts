/**
 * One compiled entry point (`orchestrator/main.js`, `scripts/start.js`...) run as a user runs it,
 * for tests of how it starts or fails to: its stdout and stderr collected, its exit awaited.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import { settlesWithin } from "../../shared/process/deadline.js";

const distRoot = fileURLToPath(new URL("../../", import.meta.url));

export interface Ran {
  /** The exit code; `null` when a signal ended it. */
  code: number | null;
  /** From the spawn to the exit. */
  ms: number;
  output: string;
}

export interface RunningEntry {
  child: ChildProcess;
  ended: Promise<Ran>;
  /** Its output so far. */
  output(): string;
}

/** Starts `entry` (relative to `dist/`) with this process's environment plus `env`. */
export function runEntry(entry: string, env: Record<string, string>): RunningEntry {
  const startedAt = performance.now();
  const child = spawn(process.execPath, [`${distRoot}${entry}`], {
    env: { ...process.env, ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let output = "";
  for (const stream of [child.stdout, child.stderr]) {
    stream.setEncoding("utf8").on("data", (text: string) => {
      output += text;
    });
  }
  const closed = new Promise((resolve) => child.once("close", resolve));
  const ended = new Promise<Ran>((resolve) => {
    child.once("exit", (code) => {
      const ms = performance.now() - startedAt;
      // The last lines may arrive after the exit; processes it started may hold its output open.
      void settlesWithin(closed, 1000).then(() => resolve({ code, ms, output }));
    });
  });
  return { child, ended, output: () => output };
}

/**
 * The run of `entry` to its exit; one still running after `timeoutMs` is killed (SIGKILL) and
 * reported with code `null`.
 */
export async function runEntryToExit(
  entry: string,
  env: Record<string, string>,
  timeoutMs: number,
): Promise<Ran> {
  const running = runEntry(entry, env);
  const timer = setTimeout(() => running.child.kill("SIGKILL"), timeoutMs);
  try {
    return await running.ended;
  } finally {
    clearTimeout(timer);
  }
}
