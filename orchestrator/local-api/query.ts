/**
 * Parses a `?wait=<ms>` parameter, capped at `maxMs` (asking for more is harmless); returns the
 * message of a 400 when it is not a whole number.
 */
export function parseWait(
  raw: string | undefined,
  fallbackMs: number,
  maxMs: number,
): number | string {
  if (raw === undefined || raw === "") return fallbackMs;
  if (!/^\d{1,15}$/.test(raw)) return "wait must be a whole number of milliseconds";
  return Math.min(Number(raw), maxMs);
}
