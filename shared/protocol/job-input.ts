import { z } from "zod";

/**
 * The job input every caller sends: a Fernet token, and the name of the client whose key made it
 * (absent: the anonymous client, `ENCRYPTION_KEY`). Any other field is refused, so a caller cannot
 * send plaintext next to (or instead of) the token by mistake. The name is not secret; an unknown
 * one fails like a bad token (`DECRYPT_FAILED`).
 */
export const jobInputSchema = z.strictObject({
  encrypted_input: z
    .string({ error: "must be a string holding a Fernet token" })
    .min(1, { error: "must not be empty" }),
  client: z
    .string({ error: "must be a string naming the client whose key encrypted the input" })
    .optional(),
});

export type JobInput = z.infer<typeof jobInputSchema>;
