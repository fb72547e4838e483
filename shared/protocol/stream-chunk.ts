/** Why generation ended. */
export type FinishReason = "stop" | "length" | "cancelled";

export interface Usage {
  prompt_tokens: number;
  completion_tokens: number;
}

/**
 * Timings on the orchestrator's clock, from the moment it accepted the job: time spent queued,
 * time to the first delta (or to the end, when there was none), and the whole job.
 */
export interface Timings {
  queue_ms: number;
  ttft_ms: number;
  total_ms: number;
}

/** One piece of generated text. `seq` counts chunks from 0 without gaps. */
export interface DeltaChunk {
  seq: number;
  delta: string;
}

/** The last chunk of every stream that did not fail. */
export interface FinalChunk {
  seq: number;
  done: true;
  finish_reason: FinishReason;
  usage: Usage;
  timings: Timings;
}

export type StreamChunk = DeltaChunk | FinalChunk;

export function isFinalChunk(chunk: StreamChunk): chunk is FinalChunk {
  return "done" in chunk && chunk.done === true;
}
