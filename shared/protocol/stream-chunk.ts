import { z } from "zod";
import { type FinishReason, finishReasonSchema } from "./finish-reason.js";
import type { TokenLogprob } from "./token-logprob.js";
import { type ToolCallPiece, toolCallPieceSchema } from "./tool-call-piece.js";

export interface Usage {
  prompt_tokens: number;
  completion_tokens: number;
  /**
   * As OpenAI reports it: `cached_tokens` of the prompt were held by the prompt cache and not
   * evaluated again. Always sent; optional for clients of servers older than the cache.
   */
  prompt_tokens_details?: { cached_tokens: number };
}

/**
 * Timings on the orchestrator's clock, from the moment it accepted the job: time spent queued,
 * time to the first delta (or to the end, when there was none), and the whole job.
 */
export interface Timings {
  /** Time queued, the wait for its model's load included. */
  queue_ms: number;
  /** Of that, the wait for its model to load on a gpu-worker (0 when it was loaded). */
  load_ms: number;
  ttft_ms: number;
  total_ms: number;
}

/** One piece of generated text. `seq` counts chunks from 0 without gaps. */
export interface DeltaChunk {
  seq: number;
  delta: string;
  /** Function calls streamed: pieces that follow the chunk's text (`tool-call-piece.ts`). */
  tool_calls?: ToolCallPiece[];
  /** The choice the text is of, for a request with `n` > 1; absent: 0. */
  index?: number;
  /** One entry per generated token whose text is in `delta`, when the request asked `logprobs`. */
  logprobs?: TokenLogprob[];
}

/** How one choice of a request with `n` > 1 ended. */
export interface ChoiceEnd {
  index: number;
  finish_reason: FinishReason;
  completion_tokens?: number;
}

/** The last chunk of every stream that did not fail. */
export interface FinalChunk {
  seq: number;
  done: true;
  finish_reason: FinishReason;
  usage: Usage;
  timings: Timings;
  /**
   * The seed the job sampled with: the request's `seed`, else one drawn for it. Sending it back as
   * `seed` (with the same request) repeats the text, when the job runs alone on its model thread.
   */
  seed?: number;
  /** An embeddings job's vectors: one per input text, in input order (no deltas precede it). */
  embeddings?: number[][];
  /**
   * Each choice's end, in index order, for a request with `n` > 1: `finish_reason` above is choice
   * 0's, `usage.completion_tokens` counts them all.
   */
  choices?: ChoiceEnd[];
  /**
   * How many runs the job took, when more than one: its gpu-worker was lost and another went on
   * from the text already streamed (see `MAX_JOB_ATTEMPTS`). Absent: one.
   */
  attempts?: number;
}

export type StreamChunk = DeltaChunk | FinalChunk;

export function isFinalChunk(chunk: StreamChunk): chunk is FinalChunk {
  return "done" in chunk && chunk.done === true;
}

const count = z.number().int().min(0);
const ms = z.number().min(0);

/**
 * A chunk as a client reads it. Objects are loose so that fields added later do not break
 * clients built against this version.
 */
export const streamChunkSchema: z.ZodType<StreamChunk> = z.union([
  z.looseObject({
    seq: count,
    delta: z.string(),
    tool_calls: z.array(z.looseObject(toolCallPieceSchema.shape)).optional(),
  }),
  z.looseObject({
    seq: count,
    done: z.literal(true),
    finish_reason: finishReasonSchema,
    usage: z.looseObject({
      prompt_tokens: count,
      completion_tokens: count,
      prompt_tokens_details: z.looseObject({ cached_tokens: count }).optional(),
    }),
    timings: z.looseObject({ queue_ms: ms, load_ms: ms.default(0), ttft_ms: ms, total_ms: ms }),
    seed: count.optional(),
    embeddings: z.array(z.array(z.number())).optional(),
    attempts: z.number().int().min(1).optional(),
  }),
]);
