import type { RunpodConfig } from "../../shared/config/index.js";
import { InternalError, InvalidInputError } from "../../shared/errors/index.js";
import type { Logger } from "../../shared/log.js";
import type { Orchestrator } from "../orchestrator.js";
import { FatalWatch } from "./fatal-watch.js";
import { waitForGpuWorkers } from "./gpu-workers-ready.js";
import { Heartbeat } from "./heartbeat.js";
import { JobLoop } from "./job-loop.js";
import { PlatformHttp } from "./platform-http.js";
import { RunpodJob } from "./runpod-job.js";
import { StopChannel } from "./stop-channel.js";
import type { ParsedTake } from "./take-answer.js";
import { WebhookUrls } from "./webhook-urls.js";

export interface RunpodWorkerOptions {
  orchestrator: Orchestrator;
  runpod: RunpodConfig;
  /** Most jobs held at once (`MAX_CONCURRENCY`, by default what the models run at once). */
  concurrency: number;
  /** `STREAM_POST_WINDOW_MS`. */
  streamWindowMs: number;
  /** `JOB_LOCK_MS`: how long a lost gpu-worker or Redis is waited for before giving up. */
  faultGraceMs: number;
  /** Sent as `runpod_version` on pings. */
  version: string;
  /** Called once on a fault the worker cannot survive, after the held jobs' errors are posted. */
  onFatal: () => void;
  log: Logger;
}

/**
 * The RunPod serverless worker (protocol §2–§6): takes jobs from the platform, runs each through
 * the orchestrator's job service, streams and posts their results, pings, and obeys stop signals.
 * `close()` stops taking, lets the held jobs finish and post (bounded by the orchestrator's
 * shutdown timeout), then stops pinging.
 */
export class RunpodWorker {
  readonly #options: RunpodWorkerOptions;
  readonly #urls: WebhookUrls;
  readonly #http: PlatformHttp;
  readonly #held = new Map<string, { job: RunpodJob; done: Promise<void> }>();
  readonly #jobLoop: JobLoop;
  readonly #heartbeat: Heartbeat;
  readonly #stopChannel: StopChannel | undefined;
  readonly #watch: FatalWatch;
  readonly #background = new Set<Promise<unknown>>();
  #slotWaiters: (() => void)[] = [];
  #closing: Promise<void> | undefined;

  constructor(options: RunpodWorkerOptions) {
    this.#options = options;
    const { runpod, log } = options;
    this.#urls = new WebhookUrls(runpod);
    this.#http = new PlatformHttp(runpod.apiKey, log);
    this.#jobLoop = new JobLoop({
      http: this.#http,
      urls: this.#urls,
      concurrency: options.concurrency,
      held: () => this.#held.size,
      slotFreed: () => new Promise((resolve) => this.#slotWaiters.push(resolve)),
      ready: async (signal) => {
        const { registry, models } = options.orchestrator;
        await waitForGpuWorkers(registry, models, signal, log);
        // From now on a lost gpu-worker is a fault: jobs are taken only from here on.
        if (!signal.aborted) this.#watch.start();
      },
      onTaken: (take) => this.#onTaken(take),
      log,
    });
    this.#heartbeat = new Heartbeat({
      http: this.#http,
      urls: this.#urls,
      intervalMs: runpod.pingIntervalMs,
      heldJobIds: () => [...this.#held.keys()],
      version: options.version,
      log,
    });
    const stopUrl = this.#urls.stop();
    this.#stopChannel =
      stopUrl === undefined
        ? undefined
        : new StopChannel({
            http: this.#http,
            url: stopUrl,
            onStop: (ids) => this.#onStop(ids),
            log,
          });
    this.#watch = new FatalWatch({
      registry: options.orchestrator.registry,
      models: options.orchestrator.models,
      graceMs: options.faultGraceMs,
      onFatal: (reason) => void this.#fatal(reason),
      log,
    });
  }

  /** Jobs held now: taken and not yet posted. */
  get heldJobIds(): string[] {
    return [...this.#held.keys()];
  }

  start(): void {
    const { runpod, concurrency, log } = this.#options;
    this.#heartbeat.start();
    this.#stopChannel?.start();
    this.#jobLoop.start();
    log.info("RunPod worker started", {
      podId: runpod.podId,
      concurrency,
      batchTake: this.#urls.canBatch,
      pingIntervalMs: runpod.pingIntervalMs,
    });
  }

  #onTaken(take: ParsedTake): void {
    const { log } = this.#options;
    for (const bad of take.malformed) {
      log.warn("the platform sent a malformed job", { jobId: bad.id, problem: bad.problem });
      if (bad.id !== undefined) this.#track(this.#failMalformed(bad.id, bad.problem));
    }
    for (const job of take.jobs) {
      if (this.#held.has(job.id)) {
        log.warn("the platform sent a job this worker already holds: ignored", { jobId: job.id });
        continue;
      }
      log.info("job taken", { jobId: job.id });
      const running = new RunpodJob(job, {
        jobs: this.#options.orchestrator.jobs,
        http: this.#http,
        urls: this.#urls,
        streamWindowMs: this.#options.streamWindowMs,
        log,
      });
      const done = running.run().finally(() => this.#release(job.id, running));
      this.#held.set(job.id, { job: running, done });
    }
  }

  async #failMalformed(jobId: string, problem: string): Promise<void> {
    const error = new InvalidInputError(`the job is malformed: ${problem}`);
    await this.#http
      .post(this.#urls.output(jobId, true), { error: JSON.stringify(error.toInfo()) }, jobId, {
        what: "output",
      })
      .catch(() => {});
  }

  #release(jobId: string, job: RunpodJob): void {
    if (this.#held.get(jobId)?.job !== job) return;
    this.#held.delete(jobId);
    const waiters = this.#slotWaiters;
    this.#slotWaiters = [];
    for (const wake of waiters) wake();
  }

  #onStop(ids: readonly string[]): void {
    const { log } = this.#options;
    for (const jobId of ids) {
      const held = this.#held.get(jobId);
      if (held === undefined) continue;
      log.info("the platform stopped a job", { jobId });
      const stopping = held.job.stop().then((ms) => {
        if (ms !== undefined) {
          log.info("generation stopped", { jobId, stoppedInMs: Math.round(ms * 10) / 10 });
        }
      });
      this.#track(stopping);
      // The slot is free at once: the stopped job posts nothing more.
      this.#release(jobId, held.job);
    }
  }

  async #fatal(reason: string): Promise<void> {
    const error = new InternalError(`the worker failed and is being replaced: ${reason}`).toInfo();
    await this.#jobLoop.close();
    const held = [...this.#held.values()];
    for (const { job } of held) job.failFatal(error);
    await Promise.all(held.map(({ done }) => done));
    this.#options.onFatal();
  }

  #track(promise: Promise<unknown>): void {
    this.#background.add(promise);
    void promise.finally(() => this.#background.delete(promise));
  }

  /** Stops taking jobs, lets the held ones finish and post, then stops pinging. Idempotent. */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      const { orchestrator, log } = this.#options;
      // A gpu-worker that drains and exits alongside is no fault now.
      this.#watch.close();
      await this.#jobLoop.close();
      log.info("no longer taking jobs", { held: this.#held.size, takes: this.#jobLoop.takes });
      // Waits for the held jobs up to the shutdown timeout, then cancels those still running.
      await orchestrator.drain();
      await Promise.all([...this.#held.values()].map(({ done }) => done));
      await Promise.allSettled([...this.#background]);
      await this.#stopChannel?.close();
      this.#heartbeat.close();
      log.info("RunPod worker stopped");
    })();
    return this.#closing;
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}
