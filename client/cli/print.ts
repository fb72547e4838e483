import { type FinalChunk, isFinalChunk, type StreamChunk } from "../../shared/protocol/index.js";
import type { JobFailedError } from "../pool-client/client-errors.js";

export interface PrinterOptions {
  /** One JSON line per chunk on `out` instead of the text. */
  json: boolean;
  /** No summary line on `err`. */
  quiet: boolean;
  /** The output proper (stdout). */
  out: (text: string) => void;
  /** Warnings, errors and the summary (stderr). */
  err: (text: string) => void;
}

/**
 * Prints a job's chunks as they arrive, checks that their `seq` numbers count up from 0 without
 * gaps, and ends with a summary. Text goes to `out` only; `err` never gets generated text.
 */
export class StreamPrinter {
  readonly #options: PrinterOptions;
  #nextSeq = 0;
  #final: FinalChunk | undefined;
  #textOpen = false;
  /** The text of choices past the first (`--choices`), printed after it when the job ends. */
  readonly #otherChoices = new Map<number, string>();

  constructor(options: PrinterOptions) {
    this.#options = options;
  }

  /** The final chunk, once it has arrived. */
  get final(): FinalChunk | undefined {
    return this.#final;
  }

  chunk(chunk: StreamChunk): void {
    if (this.#final !== undefined) {
      this.#warn(`chunk seq ${chunk.seq} arrived after the final chunk (seq ${this.#final.seq})`);
    } else if (chunk.seq !== this.#nextSeq) {
      this.#warn(
        `chunk seq ${chunk.seq} arrived where seq ${this.#nextSeq} was expected (chunks lost, repeated or out of order)`,
      );
    }
    this.#nextSeq = chunk.seq + 1;
    if (isFinalChunk(chunk)) this.#final = chunk;
    if (this.#options.json) {
      this.#options.out(`${JSON.stringify(chunk)}\n`);
    } else if (!isFinalChunk(chunk) && chunk.delta !== "") {
      const index = chunk.index ?? 0;
      if (index !== 0) {
        this.#otherChoices.set(index, (this.#otherChoices.get(index) ?? "") + chunk.delta);
        return;
      }
      this.#options.out(chunk.delta);
      this.#textOpen = true;
    }
  }

  /** The job completed: ends the text with a newline and prints the summary. */
  completed(jobId: string): void {
    this.#closeText();
    const others = [...this.#otherChoices].sort(([a], [b]) => a - b);
    for (const [index, text] of others) this.#options.out(`[choice ${index}]\n${text}\n`);
    const final = this.#final;
    if (final === undefined) {
      this.#warn("the job completed without a final chunk");
      this.#summary(`status=COMPLETED job=${jobId}`);
      return;
    }
    const { usage, timings } = final;
    this.#summary(
      `status=COMPLETED finish_reason=${final.finish_reason} ` +
        `prompt_tokens=${usage.prompt_tokens} ` +
        `cached_tokens=${usage.prompt_tokens_details?.cached_tokens ?? 0} ` +
        `completion_tokens=${usage.completion_tokens} ` +
        `queue_ms=${timings.queue_ms} load_ms=${timings.load_ms ?? 0} ` +
        `ttft_ms=${timings.ttft_ms} total_ms=${timings.total_ms} ` +
        (final.seed === undefined ? "" : `seed=${final.seed} `) +
        `job=${jobId}`,
    );
  }

  /** The job ended `FAILED`, `TIMED_OUT` or `CANCELLED`: prints `error: CODE: message`. */
  failed(error: JobFailedError): void {
    this.#closeText();
    this.#options.err(`error: ${error.code}: ${error.detail}\n`);
    this.#summary(`status=${error.status} job=${error.jobId}`);
  }

  /** The caller interrupted; `jobId` is the job cancelled, if one had been submitted. */
  interrupted(jobId: string | undefined, cancelStatus: string | undefined): void {
    this.#closeText();
    const job = jobId === undefined ? "before the job was accepted" : `job=${jobId}`;
    this.#options.err(`interrupted: ${job}${cancelStatus ? ` status=${cancelStatus}` : ""}\n`);
  }

  /** Ends a line of text left open, so what follows on the terminal starts on its own line. */
  #closeText(): void {
    if (!this.#textOpen) return;
    this.#options.out("\n");
    this.#textOpen = false;
  }

  #warn(message: string): void {
    this.#options.err(`warning: ${message}\n`);
  }

  #summary(line: string): void {
    if (!this.#options.quiet) this.#options.err(`${line}\n`);
  }
}
