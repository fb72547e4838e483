import { timingSafeEqual } from "node:crypto";
import type { FernetKey } from "./fernet.js";
import type { KeyRing } from "./key-ring.js";

/**
 * A client's proof that it owns a job: a bearer token derived from its Fernet key (HMAC-SHA256 of
 * a fixed label under the key's signing half, url-safe base64), sent as the `X-Client-Token`
 * header on `/status`, `/stream`, `/cancel` and the other routes of one job. It shows the key's
 * holder without revealing the key, and is the same for every request, so tools that can add a
 * header can send it; with key rotation, a token of any key in the client's ring is taken.
 */
export const clientTokenHeader = "x-client-token";

const label = "secure-llm-pool client token v1";

/** The token of one key. */
export function clientTokenOf(key: FernetKey): string {
  return key.derive(label).toString("base64url");
}

/** Whether `token` is the token of a key of `ring` (compared in constant time, key by key). */
export function ringOwnsClientToken(ring: KeyRing, token: string): boolean {
  const given = Buffer.from(token, "base64url");
  let owns = false;
  for (const key of ring.keys) {
    const expected = key.derive(label);
    // Every key is compared, whatever matched, so the time says nothing about which one did.
    if (given.length === expected.length && timingSafeEqual(given, expected)) owns = true;
  }
  return owns;
}
