import { createHash, timingSafeEqual } from "node:crypto";

/**
 * Checks an `Authorization` header against the configured API key in constant time (both sides
 * hashed first, so lengths do not leak either). Accepts `Bearer <key>` and the bare key, as
 * RunPod's API does.
 */
export function createApiKeyCheck(apiKey: string): (header: string | undefined) => boolean {
  const expected = createHash("sha256").update(apiKey).digest();
  return (header) => {
    if (header === undefined) return false;
    // The scheme name is case-insensitive (RFC 9110).
    const presented = /^bearer\s+/i.test(header)
      ? header.replace(/^bearer\s+/i, "").trim()
      : header.trim();
    return timingSafeEqual(createHash("sha256").update(presented).digest(), expected);
  };
}
