import type { z } from "zod";
import type { KeyRing } from "../crypto/index.js";
import { InternalError } from "../errors/index.js";

/**
 * Everything the processes leave in Redis that could hold request or output text (job data,
 * return values, deltas) is sealed with the service key: Redis, its dumps and the queue
 * dashboard only ever see Fernet tokens.
 */
export function sealJson(keyRing: KeyRing, value: unknown): string {
  return keyRing.encrypt(JSON.stringify(value));
}

/** Opens a sealed value and checks its shape. A failure is an internal error: we sealed it. */
export function openJson<T>(
  keyRing: KeyRing,
  token: string,
  schema: z.ZodType<T>,
  what: string,
): T {
  let parsed: unknown;
  try {
    parsed = JSON.parse(keyRing.decrypt(token).toString("utf8"));
  } catch (error) {
    throw new InternalError(`${what} could not be opened with the configured key`, {
      cause: error,
    });
  }
  const result = schema.safeParse(parsed);
  if (!result.success) throw new InternalError(`${what} has an unexpected shape`);
  return result.data;
}
