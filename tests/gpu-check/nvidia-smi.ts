/**
 * What `nvidia-smi` says about the GPU and the processes on it. Absent on a CPU machine: every
 * reading is then `undefined`, and the check reports node-llama-cpp's own numbers alone.
 */
import { execFile } from "node:child_process";
import { promisify } from "node:util";

const run = promisify(execFile);

export interface GpuReading {
  readonly name: string;
  readonly driver: string;
  readonly computeCapability: string;
  readonly memoryUsedMiB: number;
  readonly memoryTotalMiB: number;
  /** Memory each process holds on the GPU, by pid (empty where the driver cannot see pids). */
  readonly processes: readonly { pid: number; usedMiB: number }[];
}

async function query(args: string[]): Promise<string[] | undefined> {
  try {
    const { stdout } = await run("nvidia-smi", [...args, "--format=csv,noheader,nounits"], {
      timeout: 15_000,
    });
    return stdout
      .split("\n")
      .map((line) => line.trim())
      .filter(Boolean);
  } catch {
    return undefined;
  }
}

/** One reading of the first GPU, or `undefined` without `nvidia-smi`. */
export async function readGpu(): Promise<GpuReading | undefined> {
  const gpu = await query(["--query-gpu=name,driver_version,compute_cap,memory.used,memory.total"]);
  const first = gpu?.[0]?.split(",").map((cell) => cell.trim());
  if (first === undefined) return undefined;
  const apps = (await query(["--query-compute-apps=pid,used_memory"])) ?? [];
  return {
    name: first[0] ?? "",
    driver: first[1] ?? "",
    computeCapability: first[2] ?? "",
    memoryUsedMiB: Number(first[3]),
    memoryTotalMiB: Number(first[4]),
    processes: apps.map((line) => {
      const [pid, used] = line.split(",").map((cell) => cell.trim());
      return { pid: Number(pid), usedMiB: Number(used) };
    }),
  };
}

/** MiB that `pid` holds by `nvidia-smi`, if it lists that pid. */
export function processMiB(reading: GpuReading | undefined, pid: number | undefined) {
  return reading?.processes.find((process) => process.pid === pid)?.usedMiB;
}
