import { z } from "zod";

/**
 * The job input every caller sends: nothing but a Fernet token. Any other field is refused, so a
 * caller cannot send plaintext next to (or instead of) the token by mistake.
 */
export const jobInputSchema = z.strictObject({
  encrypted_input: z
    .string({ error: "must be a string holding a Fernet token" })
    .min(1, { error: "must not be empty" }),
});

export type JobInput = z.infer<typeof jobInputSchema>;
