import type { KeyRing } from "../../shared/crypto/index.js";
import type { ErrorInfo } from "../../shared/errors/index.js";
import type { OpenAiAnswerShape } from "../../shared/openai/index.js";
import { isTerminalStatus, type JobStatus, type OutputChunk } from "../../shared/protocol/index.js";

/**
 * What the orchestrator knows of one job, and the one owner of its states: its status, the chunks
 * produced so far (in order), and its error. Every transition is a method here, each is allowed
 * from the states docs/api.md's "Job states" lists (see {@link JobStatus}) and ignored from
 * any other, and the end listener hears of the job exactly once, when it first becomes terminal.
 */
export class JobRecord {
  readonly id: string;
  /** `performance.now()` when the job was accepted: every timing is measured from here. */
  readonly acceptedAt: number;
  readonly acceptedAtDate: number;
  model: string | undefined;
  /** A plaintext OpenAI job (`openai_route`): how its answer is to be shaped. */
  openai: OpenAiAnswerShape | undefined;
  /** The named client that sent it (`CLIENT_KEYS_FILE`); `undefined`: the anonymous client. */
  client: string | undefined;
  /**
   * A named client's ring as admission found it (what its outputs are sealed with and its
   * `X-Client-Token` is checked against, even once the client is revoked); `undefined` for a
   * record read back from Redis (the current keys file then answers).
   */
  clientRing: KeyRing | undefined;
  /** A job refused for overload: when to try again, in seconds (HTTP `Retry-After`). */
  retryAfterSeconds: number | undefined;
  #status: JobStatus = "IN_QUEUE";
  readonly #chunks: OutputChunk[] = [];
  #generationEnded = false;
  #error: ErrorInfo | undefined;
  /** How many chunks `/stream` polls have taken. */
  #streamed = 0;
  startedAt: number | undefined;
  firstChunkAt: number | undefined;
  endedAt: number | undefined;
  #waiters = new Set<() => void>();
  readonly #onEnd: ((record: JobRecord) => void) | undefined;

  /**
   * `onEnd`: told once, when the job first reaches a terminal status. `acceptedAt` (on this
   * process's `performance.now()` clock) and `acceptedAtDate` (epoch ms) default to now; a record
   * rebuilt from Redis passes them.
   */
  constructor(
    id: string,
    options: {
      onEnd?: (record: JobRecord) => void;
      acceptedAt?: number | undefined;
      acceptedAtDate?: number;
    } = {},
  ) {
    this.id = id;
    this.#onEnd = options.onEnd;
    this.acceptedAt = options.acceptedAt ?? performance.now();
    this.acceptedAtDate = options.acceptedAtDate ?? Date.now();
  }

  /**
   * Sets the whole state of a record rebuilt from its snapshot in Redis (before anyone reads it).
   * The end listener is not told: the job's end was counted where it happened.
   */
  restore(state: {
    status: JobStatus;
    chunks: readonly OutputChunk[];
    generationEnded: boolean;
    error: ErrorInfo | undefined;
    startedAt: number | undefined;
    endedAt: number | undefined;
    streamed: number;
  }): void {
    this.#status = state.status;
    this.#chunks.splice(0, this.#chunks.length, ...state.chunks);
    this.#generationEnded = state.generationEnded;
    this.#error = state.error;
    this.startedAt = state.startedAt;
    this.endedAt = state.endedAt;
    // Not capped by the chunks restored: an unfinished job's are rebuilt from its reply stream
    // after this, and those a mirror here already handed to `/stream` are not handed out again.
    this.#streamed = state.streamed;
  }

  /** How many chunks `/stream` polls have taken. */
  get streamedCount(): number {
    return this.#streamed;
  }

  get status(): JobStatus {
    return this.#status;
  }

  get terminal(): boolean {
    return isTerminalStatus(this.#status);
  }

  get chunks(): readonly OutputChunk[] {
    return this.#chunks;
  }

  get error(): ErrorInfo | undefined {
    return this.#error;
  }

  /** Milliseconds from acceptance to the start of processing (RunPod's `delayTime`). */
  get delayMs(): number {
    const start = this.startedAt ?? this.endedAt ?? performance.now();
    return Math.max(0, Math.round(start - this.acceptedAt));
  }

  /** Milliseconds of processing (RunPod's `executionTime`). */
  get executionMs(): number {
    if (this.startedAt === undefined) return 0;
    return Math.max(0, Math.round((this.endedAt ?? performance.now()) - this.startedAt));
  }

  markStarted(at = performance.now()): void {
    if (this.#status !== "IN_QUEUE") return;
    this.startedAt = at;
    this.#status = "IN_PROGRESS";
    this.#notify();
  }

  /**
   * Appends a chunk. A job cancelled or timed out by the caller still takes the chunks already on
   * their way (its final `cancelled` chunk included); a finished job takes none.
   */
  addChunk(chunk: OutputChunk, final = false): void {
    if (this.#status === "COMPLETED" || this.#status === "FAILED") return;
    const now = performance.now();
    this.markStarted(now);
    this.firstChunkAt ??= now;
    this.#chunks.push(chunk);
    if (final) this.#generationEnded = true;
    this.#notify();
  }

  /**
   * Whether the final chunk arrived: the gpu-worker finished with this job (for a cancelled job,
   * it confirmed the end). Known here because an encrypted final chunk does not show it.
   */
  get generationEnded(): boolean {
    return this.#generationEnded;
  }

  /** The final chunk arrived: the job ends `COMPLETED` (only from a non-terminal status). */
  complete(): void {
    this.#end("COMPLETED");
  }

  fail(error: ErrorInfo): void {
    if (this.terminal) return;
    this.#error = error;
    this.#end("FAILED");
  }

  /** Ends the job as `CANCELLED` or `TIMED_OUT`; later chunks are still recorded. */
  stop(status: "CANCELLED" | "TIMED_OUT", error?: ErrorInfo): void {
    if (this.terminal) return;
    this.#error = error;
    this.#end(status);
  }

  /** Chunks no earlier `/stream` poll has taken. */
  takeStreamChunks(): OutputChunk[] {
    const fresh = this.#chunks.slice(this.#streamed);
    this.#streamed = Math.max(this.#streamed, this.#chunks.length);
    return fresh;
  }

  /** Makes every chunk unstreamed again, for a caller that must be sent the stream anew. */
  rewindStream(): void {
    this.#streamed = 0;
  }

  get hasUnstreamedChunks(): boolean {
    return this.#streamed < this.#chunks.length;
  }

  /** Resolves at the next change of status or chunks, or after `timeoutMs`. */
  waitForChange(timeoutMs: number): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.#waiters.delete(done);
        resolve();
      };
      const timer = setTimeout(done, timeoutMs);
      this.#waiters.add(done);
    });
  }

  /** Resolves when chunks not yet streamed are there, or the job is terminal, or after `timeoutMs`. */
  waitForChunks(timeoutMs: number): Promise<void> {
    return this.#waitUntil(() => this.hasUnstreamedChunks || this.terminal, timeoutMs);
  }

  /** Resolves when the job is terminal, or after `timeoutMs`. */
  waitForEnd(timeoutMs: number): Promise<void> {
    return this.#waitUntil(() => this.terminal, timeoutMs);
  }

  /** Waits change by change until `done()` holds, or `timeoutMs` has passed. */
  async #waitUntil(done: () => boolean, timeoutMs: number): Promise<void> {
    const deadline = performance.now() + timeoutMs;
    while (!done()) {
      const left = deadline - performance.now();
      if (left <= 0) return;
      await this.waitForChange(left);
    }
  }

  #end(status: JobStatus): void {
    if (this.terminal) return;
    this.#status = status;
    this.endedAt = performance.now();
    this.#onEnd?.(this);
    this.#notify();
  }

  #notify(): void {
    for (const waiter of [...this.#waiters]) waiter();
  }
}
