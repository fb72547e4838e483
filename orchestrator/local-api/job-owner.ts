import { ringOwnsClientToken } from "../../shared/crypto/index.js";
import type { ClientRings } from "../admission/admit-request.js";
import type { JobRecord } from "../jobs/job-record.js";

/**
 * Whether a caller may see a job: any caller for an anonymous client's job; for a named client's,
 * only one whose `X-Client-Token` that client's ring owns (the ring captured at admission, else
 * the keys file's now: a revoked client's jobs read back from Redis are nobody's). A caller that
 * may not is answered as for a job that does not exist.
 */
export function mayReadJob(
  record: JobRecord,
  token: string | string[] | undefined,
  clients: ClientRings | undefined,
): boolean {
  if (record.client === undefined) return true;
  const ring = record.clientRing ?? clients?.ringOf(record.client);
  return ring !== undefined && typeof token === "string" && ringOwnsClientToken(ring, token);
}
