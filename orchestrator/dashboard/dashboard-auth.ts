import { createApiKeyCheck } from "../local-api/api-key-check.js";

/**
 * Checks a dashboard request's `Authorization` header against the API key in constant time. A
 * browser sends HTTP Basic credentials (any user name, the API key as password); scripts may send
 * `Bearer <API_KEY>` as to the local API.
 */
export function createDashboardAuthCheck(apiKey: string): (header: string | undefined) => boolean {
  const checkKey = createApiKeyCheck(apiKey);
  return (header) => {
    if (header === undefined) return false;
    const basic = /^basic\s+(\S+)$/i.exec(header.trim());
    if (basic?.[1] === undefined) return checkKey(header);
    const credentials = Buffer.from(basic[1], "base64").toString("utf8");
    const colon = credentials.indexOf(":");
    // Still compared when malformed, so a bad header costs the same as a wrong key.
    return checkKey(colon >= 0 ? credentials.slice(colon + 1) : `\u0000${credentials}`);
  };
}
