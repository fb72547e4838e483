/**
 * What every benchmark shares: the number of runs (`BENCH_RUNS`), percentiles and markdown rows.
 */

/** Repetitions per measure: `BENCH_RUNS`, else `fallback`. */
export function benchRuns(fallback = 10): number {
  const text = process.env.BENCH_RUNS;
  if (text === undefined || text === "") return fallback;
  const runs = Number(text);
  if (!Number.isInteger(runs) || runs < 1) throw new Error("BENCH_RUNS must be a whole number ≥ 1");
  return runs;
}

/**
 * A numeric option given on the command line as `--name=value` (`npm run bench -- soak
 * --minutes=10`), else `fallback`.
 */
export function benchOption(name: string, fallback: number): number {
  const prefix = `--${name}=`;
  const text = process.argv.find((arg) => arg.startsWith(prefix))?.slice(prefix.length);
  if (text === undefined) return fallback;
  const value = Number(text);
  if (text === "" || !Number.isFinite(value) || value < 0) {
    throw new Error(`--${name} must be a number ≥ 0, got "${text}"`);
  }
  return value;
}

/** The value at the `p`th percentile (nearest rank, rounding down). */
export function percentile(values: readonly number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? Number.NaN;
}

/** `| name | p50 | p90 | unit |`, with `digits` decimals. */
export function row(name: string, values: readonly number[], unit: string, digits = 1): string {
  const fmt = (v: number) => v.toFixed(digits);
  return `| ${name} | ${fmt(percentile(values, 50))} | ${fmt(percentile(values, 90))} | ${unit} |`;
}

export const tableHead = ["| measure | p50 | p90 | unit |", "|---|---|---|---|"];

/** Prints lines to stdout, one per line. */
export function print(lines: readonly string[]): void {
  process.stdout.write(`${lines.join("\n")}\n`);
}
