import { z } from "zod";
import { errorCodeSchema } from "../errors/index.js";
import { choiceResultSchema } from "./choice-result.js";
import { finishReasonSchema } from "./finish-reason.js";
import { tokenLogprobSchema } from "./token-logprob.js";
import { toolCallPieceSchema } from "./tool-call-piece.js";

/**
 * What a gpu-worker sends back to the orchestrator that submitted a job, numbered from 0 by `seq`.
 * A job's messages are some `delta`s followed by exactly one `done` or `error`.
 */
export const replyMessageSchema = z.discriminatedUnion("kind", [
  z.strictObject({
    kind: z.literal("delta"),
    seq: z.number().int().min(0),
    text: z.string(),
    /** Function calls streamed after `text` (absent from gpu-workers before tools). */
    toolCalls: z.array(toolCallPieceSchema).optional(),
    /** The choice the text is of (`n` > 1); absent: 0. */
    index: z.number().int().min(0).optional(),
    /** The log probabilities of the tokens whose text this is, when the job asked for them. */
    logprobs: z.array(tokenLogprobSchema).optional(),
    /**
     * The ids of the tokens whose text this is (absent: the job cannot be continued elsewhere,
     * see `orchestrator/jobs/delivered-tokens.ts`). Sealed like the text.
     */
    tokens: z.array(z.number().int().min(0)).optional(),
  }),
  z.strictObject({
    kind: z.literal("done"),
    seq: z.number().int().min(0),
    finishReason: finishReasonSchema,
    promptTokens: z.number().int().min(0),
    /** Prompt tokens the prompt cache held (absent from gpu-workers before the cache: 0). */
    cachedTokens: z.number().int().min(0).optional(),
    completionTokens: z.number().int().min(0),
    /** The seed the job sampled with (absent from gpu-workers before seeds were reported). */
    seed: z.number().int().min(0).optional(),
    /** Each choice's end, with `n` > 1 (`finishReason` is choice 0's, `completionTokens` the sum). */
    choices: z.array(choiceResultSchema).optional(),
    /** Milliseconds from the start of processing to the end, on the gpu-worker's clock. */
    runMs: z.number().min(0),
    /** Milliseconds the job waited for its model to load (absent from older gpu-workers: 0). */
    loadMs: z.number().min(0).optional(),
    /** An embeddings job's vectors, one per input text, in order. */
    embeddings: z.array(z.array(z.number())).optional(),
  }),
  z.strictObject({
    kind: z.literal("error"),
    seq: z.number().int().min(0),
    code: errorCodeSchema,
    message: z.string(),
  }),
]);

export type ReplyMessage = z.infer<typeof replyMessageSchema>;
export type TerminalReplyMessage = Exclude<ReplyMessage, { kind: "delta" }>;
