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
