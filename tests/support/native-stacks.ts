/**
 * Every thread's native stack of a live process (gdb, where installed): what a test prints when a
 * stack process it waits for says nothing, so a hang is diagnosable from the test's output alone.
 */
import { execFile } from "node:child_process";
import { promisify } from "node:util";

/** The process's threads' stacks, or why there are none (no gdb, no permission, gone). */
export async function nativeStacks(pid: number): Promise<string> {
  let output: { stdout: string; stderr: string };
  try {
    output = await promisify(execFile)(
      "gdb",
      ["-p", String(pid), "-batch", "-nx", "-ex", "thread apply all bt"],
      { timeout: 60_000, maxBuffer: 16 * 2 ** 20 },
    );
  } catch (error) {
    // gdb missing, or failed: its own words where it printed any.
    const { stderr, message } = error as Error & { stderr?: string };
    const why = firstLine(stderr ?? "") ?? firstLine(message) ?? "gdb failed";
    return `no native stacks of process ${pid}: ${why}`;
  }
  // gdb's own chatter (symbol loading) aside: the threads and their frames.
  const frames = output.stdout.split("\n").filter((line) => /^(Thread |#\d)/.test(line));
  if (frames.length > 0) return frames.join("\n");
  return `no native stacks of process ${pid}: ${firstLine(output.stderr) ?? "gdb printed none"}`;
}

function firstLine(text: string): string | undefined {
  return text.split("\n").find((line) => line.trim() !== "");
}
