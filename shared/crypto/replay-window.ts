/** How far in the future a token's timestamp may lie (clock skew), as Python's `cryptography` allows. */
export const maxClockSkewSeconds = 60;

/** Where a token's timestamp lies relative to the replay window. */
export type TokenAge = "fresh" | "expired" | "future";

/**
 * Python `cryptography`'s TTL rule, on a timestamp read from a token that already verified:
 * `expired` when older than `ttlSeconds`, `future` when more than 60 s ahead of `nowSeconds`.
 * `ttlSeconds` 0 means no window: every token is `fresh`.
 */
export function tokenAge(
  issuedAtSeconds: number,
  ttlSeconds: number,
  nowSeconds: number,
): TokenAge {
  if (ttlSeconds === 0) return "fresh";
  if (issuedAtSeconds + ttlSeconds < nowSeconds) return "expired";
  if (nowSeconds + maxClockSkewSeconds < issuedAtSeconds) return "future";
  return "fresh";
}
