import { z } from "zod";
import type { KeyRing } from "../crypto/index.js";
import { type StreamChunk, streamChunkSchema } from "./stream-chunk.js";

/**
 * A stream chunk whose content is a Fernet token (first `ENCRYPTION_KEY`) of the chunk's JSON,
 * so that whoever stores or relays outputs (RunPod, a proxy, a log) holds only ciphertext. `seq`
 * stays readable for ordering; it is repeated inside the token, and a reader checks both agree.
 */
export interface EncryptedChunk {
  seq: number;
  encrypted: string;
}

/** A chunk as the API serves it: plain, or encrypted for a job that asked for it. */
export type OutputChunk = StreamChunk | EncryptedChunk;

export function isEncryptedChunk(chunk: OutputChunk): chunk is EncryptedChunk {
  return "encrypted" in chunk && typeof chunk.encrypted === "string";
}

export const encryptedChunkSchema = z.looseObject({
  seq: z.number().int().min(0),
  encrypted: z.string().min(1),
});

/** A chunk as the API serves it, read back (from a job's record in Redis). */
export const outputChunkSchema: z.ZodType<OutputChunk> = z.union([
  encryptedChunkSchema,
  streamChunkSchema,
]);

export function encryptChunk(keyRing: KeyRing, chunk: StreamChunk): EncryptedChunk {
  return { seq: chunk.seq, encrypted: keyRing.encrypt(JSON.stringify(chunk)) };
}

/**
 * Opens an encrypted chunk: `undefined` when the token does not decrypt with the ring, is not a
 * chunk, or holds another `seq` than the envelope (a chunk moved to another place in the stream).
 */
export function decryptChunk(keyRing: KeyRing, chunk: EncryptedChunk): StreamChunk | undefined {
  try {
    const parsed = streamChunkSchema.safeParse(
      JSON.parse(keyRing.decrypt(chunk.encrypted).toString("utf8")),
    );
    return parsed.success && parsed.data.seq === chunk.seq ? parsed.data : undefined;
  } catch {
    return undefined;
  }
}
