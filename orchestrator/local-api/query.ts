/** Parses a `?wait=<ms>` parameter; returns the message of a 400 when it is not acceptable. */
export function parseWait(
  raw: string | undefined,
  fallbackMs: number,
  maxMs: number,
): number | string {
  if (raw === undefined || raw === "") return fallbackMs;
  if (!/^\d{1,9}$/.test(raw)) return `wait must be a whole number of milliseconds in [0, ${maxMs}]`;
  const value = Number(raw);
  if (value > maxMs) return `wait must be at most ${maxMs} ms`;
  return value;
}
