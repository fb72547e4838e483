import {
  ErrorCode,
  type ErrorInfo,
  InternalError,
  messageOf,
  toErrorInfo,
} from "../../shared/errors/index.js";
import type { Logger } from "../../shared/log.js";
import {
  answerForShape,
  openAiRoutePaths,
  sseEvent,
  streamEndOf,
} from "../../shared/openai/index.js";
import { aborted } from "../../shared/process/aborted.js";
import type { StreamChunk } from "../../shared/protocol/index.js";
import type { JobRecord } from "../jobs/job-record.js";
import type { JobService } from "../jobs/job-service.js";
import type { PlatformHttp } from "./platform-http.js";
import { StreamPoster } from "./stream-poster.js";
import type { TakenJob } from "./take-answer.js";
import type { WebhookUrls } from "./webhook-urls.js";

export interface RunpodJobDeps {
  jobs: JobService;
  http: PlatformHttp;
  urls: WebhookUrls;
  streamWindowMs: number;
  log: Logger;
}

/** How long a stopped job's generation may take to confirm its end before we stop waiting. */
const stopConfirmMs = 5000;

/**
 * One RunPod job from take to final post: submitted to the job service (the same path as the
 * local API's `/run`), its chunks streamed to the platform as they come, then the final result
 * (`isStream=true`, the aggregated chunk list) or `{"error": "<json {code, message}>"}`. A job the
 * platform stops posts nothing more.
 */
export class RunpodJob {
  readonly id: string;
  readonly #job: TakenJob;
  readonly #deps: RunpodJobDeps;
  readonly #interrupt = new AbortController();
  #stopped = false;
  #fatal: ErrorInfo | undefined;
  #poster: StreamPoster | undefined;
  #record: JobRecord | undefined;

  constructor(job: TakenJob, deps: RunpodJobDeps) {
    this.id = job.id;
    this.#job = job;
    this.#deps = deps;
  }

  /** Runs the job to its end; never rejects. */
  async run(): Promise<void> {
    const { jobs, log } = this.#deps;
    if (isOpenAiModelsJob(this.#job.input)) {
      try {
        await this.#post({ output: [jobs.openAiModels()] });
      } catch (error) {
        await this.#postError(toErrorInfo(error));
      }
      return;
    }
    let record: JobRecord;
    const known = jobs.known(this.id);
    try {
      if (known !== undefined) {
        // The platform delivered a job this worker already ran (a lost output post, a retried
        // take): it runs once; the platform gets the result it has, streamed and posted again.
        log.warn("the platform delivered a job again: answering from its record", {
          jobId: this.id,
          status: known.status,
        });
        known.rewindStream();
      }
      record = known ?? (await jobs.submit(this.#job.input, { id: this.id }));
    } catch (error) {
      // Only a job id this orchestrator still remembers gets here.
      log.error("could not accept a job", {
        jobId: this.id,
        error: messageOf(error),
      });
      await this.#postError(new InternalError("the worker could not accept this job").toInfo());
      return;
    }
    this.#record = record;
    if (this.#stopped) {
      // Stopped while it was being queued.
      await jobs.cancel(this.id);
      return;
    }
    const streamUrl = this.#deps.urls.stream(this.id);
    const poster =
      streamUrl === undefined
        ? undefined
        : new StreamPoster({
            http: this.#deps.http,
            url: streamUrl,
            jobId: this.id,
            windowMs: this.#deps.streamWindowMs,
            // An OpenAI streamed answer is server-sent event text, posted as RunPod's vLLM
            // worker does: each post's output is a string of `data: {...}` events.
            joinText: record.openai !== undefined,
            log,
          });
    this.#poster = poster;
    const interrupted = aborted(this.#interrupt.signal);
    // OpenAI jobs: each chunk becomes OpenAI's events (streamed), or one object at the end.
    const openai =
      record.openai === undefined
        ? undefined
        : {
            answer: answerForShape(record.openai, this.id, record.model ?? ""),
            events: [] as string[],
          };
    while (!this.#interrupt.signal.aborted) {
      for (const chunk of record.takeStreamChunks()) {
        if (openai === undefined) {
          poster?.push(chunk);
        } else if (record.openai?.stream === true) {
          for (const event of openai.answer.events(chunk as StreamChunk)) {
            const text = sseEvent(event);
            openai.events.push(text);
            poster?.push(text);
          }
        }
      }
      if (record.terminal) break;
      await Promise.race([record.waitForChange(60_000), interrupted]);
    }
    if (this.#stopped) return;
    if (this.#fatal !== undefined) {
      poster?.abandon();
      await this.#postError(this.#fatal, true);
      return;
    }
    await poster?.flush();
    if (this.#stopped) return;
    if (record.status === "COMPLETED" && openai !== undefined) {
      // As RunPod's vLLM worker (aggregated stream): the list of what it yielded.
      if (record.openai?.stream === true) {
        const end = streamEndOf(openai.answer);
        const done = end === undefined ? [] : [sseEvent(end)];
        for (const text of done) poster?.push(text);
        await poster?.flush();
        await this.#post({ output: [...openai.events, ...done] });
      } else {
        await this.#post({ output: [openai.answer.complete(record.chunks as StreamChunk[])] });
      }
    } else if (record.status === "COMPLETED") {
      await this.#post({ output: [...record.chunks] });
    } else if (record.status === "CANCELLED") {
      // Not a stop from the platform (that posts nothing): the shutdown deadline passed.
      await this.#postError(
        new InternalError("the worker shut down before the job finished").toInfo(),
      );
    } else {
      const error = record.error ?? new InternalError("the job failed").toInfo();
      // This worker's own gpu-worker died or stalled (on RunPod it is the only one, and nothing
      // restarts it): the job is retryable elsewhere, and the platform should replace this worker.
      await this.#postError(error, error.code === ErrorCode.WORKER_LOST);
    }
  }

  /**
   * The platform stopped this job: abort its generation, post nothing more. Resolves with how
   * long the generation took to confirm its end, in ms (`undefined` if it never confirmed).
   */
  async stop(): Promise<number | undefined> {
    if (this.#stopped) return undefined;
    this.#stopped = true;
    const startedAt = performance.now();
    this.#poster?.abandon();
    this.#interrupt.abort();
    const record = this.#record;
    if (record === undefined || record.terminal) return undefined;
    const ran = record.status === "IN_PROGRESS";
    await this.#deps.jobs.cancel(this.id);
    if (!ran) return undefined;
    // The gpu-worker's last reply for an aborted generation is a `cancelled` final chunk.
    const deadline = startedAt + stopConfirmMs;
    while (!record.generationEnded) {
      const left = deadline - performance.now();
      if (left <= 0) return undefined;
      await record.waitForChange(left);
    }
    const stoppedInMs = performance.now() - startedAt;
    // Nobody will read the rest: a shutdown need not wait for it to be streamed.
    record.takeStreamChunks();
    return stoppedInMs;
  }

  /** A fault the worker cannot survive: post the error with `stopPod: true` instead of a result. */
  failFatal(error: ErrorInfo): void {
    this.#fatal ??= error;
    this.#interrupt.abort();
  }

  #postError(error: ErrorInfo, stopPod = false): Promise<void> {
    const body: Record<string, unknown> = {
      error: JSON.stringify({ code: error.code, message: error.message }),
    };
    if (stopPod) body.stopPod = true;
    return this.#post(body);
  }

  async #post(body: Record<string, unknown>): Promise<void> {
    const { http, urls, log } = this.#deps;
    try {
      const status = await http.post(urls.output(this.id, true), body, this.id, {
        what: "output",
      });
      if (status < 300) log.info("job result posted", { jobId: this.id, status });
    } catch (error) {
      log.error("could not post a job's result", {
        jobId: this.id,
        error: messageOf(error),
      });
    }
  }
}

/** RunPod's `openai_route` for the model list, which no model needs to answer. */
function isOpenAiModelsJob(input: unknown): boolean {
  return (
    typeof input === "object" &&
    input !== null &&
    (input as Record<string, unknown>).openai_route === openAiRoutePaths.models
  );
}
