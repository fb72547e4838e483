import { z } from "zod";
import type { KeyRing } from "../crypto/index.js";
import { type ReplyMessage, replyMessageSchema } from "./reply-message.js";
import { openJson, sealJson } from "./sealed.js";

/**
 * The text of one reply on the wire (a pub/sub message and a delta-stream entry alike). The job id
 * and sequence number travel in the clear so the orchestrator can route and order without
 * decrypting; the message itself is sealed. `e: "started"` is an unsequenced, best-effort notice.
 * `a` is the attempt that sent it (absent: 1): a job queued again after its gpu-worker was lost
 * runs as attempt 2, and the orchestrator drops what the lost attempt still sends.
 */
const attempt = z.number().int().min(1).optional();
const envelopeSchema = z.union([
  z.object({ j: z.string(), a: attempt, s: z.number().int().min(0), t: z.string() }),
  z.object({ j: z.string(), a: attempt, e: z.literal("started") }),
  /**
   * Written by the orchestrator in the job's stream only (never published) when it queues attempt
   * `a` as a continuation: `a`'s replies start at seq `f`, and an earlier attempt's from `f` on
   * are not the job's. A reader that rebuilds the job from its stream (an adopting orchestrator,
   * a mirror) takes each attempt's replies below the next one's `f` only.
   */
  z.object({ j: z.string(), a: attempt, e: z.literal("from"), f: z.number().int().min(0) }),
]);

export type ReplyEnvelope = z.infer<typeof envelopeSchema>;

export function encodeReply(
  keyRing: KeyRing,
  jobId: string,
  message: ReplyMessage,
  attempt = 1,
): string {
  return JSON.stringify({ j: jobId, a: attempt, s: message.seq, t: sealJson(keyRing, message) });
}

export function encodeStarted(jobId: string, attempt = 1): string {
  return JSON.stringify({ j: jobId, a: attempt, e: "started" });
}

/** The mark that `attempt` continues the job from reply `from` (see the envelope's `from`). */
export function encodeContinuedFrom(jobId: string, attempt: number, from: number): string {
  return JSON.stringify({ j: jobId, a: attempt, e: "from", f: from });
}

/** Parses an envelope; `undefined` for anything that is not one (it is then ignored). */
export function decodeEnvelope(text: string): ReplyEnvelope | undefined {
  try {
    const result = envelopeSchema.safeParse(JSON.parse(text));
    return result.success ? result.data : undefined;
  } catch {
    return undefined;
  }
}

/** Opens the sealed message of a sequenced envelope; throws an internal error if it is not ours. */
export function openReply(
  keyRing: KeyRing,
  envelope: { j: string; s: number; t: string },
): ReplyMessage {
  return openJson(keyRing, envelope.t, replyMessageSchema, "a reply message");
}
