/**
 * A stand-in for the RunPod platform's side of the serverless worker protocol
 * (`shared/docs/runpod-protocol.md` §2–§6), as a real local HTTP server: job-take and
 * job-take-batch long polls (`job_in_progress`, `batch_size`), job-done (`isStream`), job-stream,
 * ping (`job_id`, `runpod_version`) and the job-stop long poll. Every call must carry the raw API
 * key as `Authorization`. Tests queue jobs, script error answers, send stop signals, and read
 * back everything the worker sent. It also answers the hosted API's caller routes (`/run`,
 * `/runsync`, `/stream/{id}`, `/status/{id}`, `/status-sync/{id}`, `/cancel/{id}`, `/health`,
 * with `Authorization: Bearer <userApiKey>`) from what the worker posted, as
 * `https://api.runpod.ai/v2/<endpoint>` does.
 */
import { randomUUID } from "node:crypto";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { waitFor } from "../support/wait-for.js";

export interface PlatformJob {
  id?: unknown;
  input?: unknown;
  [field: string]: unknown;
}

export interface TakeCall {
  at: number;
  batch: boolean;
  batchSize: number | undefined;
  jobInProgress: string | null;
  /** Jobs the platform had handed out and not yet seen finished (output posted or stopped). */
  outstanding: number;
  /** When it was answered (a long poll is answered later than it arrived). */
  answeredAt: number;
  /** What the answer held. */
  status: number;
  jobIds: string[];
}

export interface PingCall {
  at: number;
  jobIds: string[];
  version: string | null;
}

export interface PostCall {
  at: number;
  jobId: string;
  isStream: string | null;
  status: number;
  contentType: string | undefined;
  requestId: string | undefined;
  body: Record<string, unknown>;
}

export interface FakePlatformOptions {
  apiKey: string;
  /** How long an empty job-take or job-stop long poll is held before `204`, in ms. Default 500. */
  holdMs?: number;
  /** Answer `/job-stop/` with 404 (no stop channel). Default false. */
  noStopChannel?: boolean;
  /** A `?query` on every template, as production templates have. Default true. */
  templateQuery?: boolean;
  /** The key callers of the hosted API send as `Bearer`. Default "user-api-key". */
  userApiKey?: string;
}

const hostedRoutes = new Set([
  "run",
  "runsync",
  "stream",
  "status",
  "status-sync",
  "cancel",
  "health",
]);

type Waiter = () => void;

export class FakeRunpodPlatform {
  readonly takes: TakeCall[] = [];
  readonly pings: PingCall[] = [];
  /** Every stream post, in arrival order. */
  readonly streamPosts: PostCall[] = [];
  /** Every job-done post, including refused attempts. */
  readonly outputPosts: PostCall[] = [];
  readonly stopPolls: { at: number }[] = [];
  readonly unauthorized: string[] = [];
  readonly #server: http.Server;
  readonly #options: Required<FakePlatformOptions>;
  readonly #queue: PlatformJob[] = [];
  readonly #outstanding = new Set<string>();
  readonly #stopsToSend: string[] = [];
  /** When each stop was delivered to the worker, by job id. */
  readonly stopsDelivered = new Map<string, number>();
  /** The same moments on the wall clock (`Date.now()`), to compare with log timestamps. */
  readonly stopsDeliveredAtDate = new Map<string, number>();
  readonly #takeScript: number[] = [];
  readonly #outputScript: number[] = [];
  #waiters: Waiter[] = [];
  #port = 0;

  private constructor(options: FakePlatformOptions) {
    this.#options = {
      holdMs: 500,
      noStopChannel: false,
      templateQuery: true,
      userApiKey: "user-api-key",
      ...options,
    };
    this.#server = http.createServer((request, response) => this.#handle(request, response));
  }

  static async start(options: FakePlatformOptions): Promise<FakeRunpodPlatform> {
    const platform = new FakeRunpodPlatform(options);
    await new Promise<void>((resolve) => platform.#server.listen(0, "127.0.0.1", resolve));
    platform.#port = (platform.#server.address() as AddressInfo).port;
    return platform;
  }

  /** The hosted API's base URL, as callers use it (`https://api.runpod.ai/v2/<endpoint>`). */
  get hostedUrl(): string {
    return `http://127.0.0.1:${this.#port}/v2/fake-endpoint`;
  }

  /** The `RUNPOD_*` variables the platform gives a worker. */
  env(podId = "pod-test-1"): Record<string, string> {
    const base = `http://127.0.0.1:${this.#port}/v2/fake-endpoint`;
    const q = this.#options.templateQuery ? "?gpu=CPU" : "";
    return {
      RUNPOD_WEBHOOK_GET_JOB: `${base}/job-take/$RUNPOD_POD_ID${q}`,
      RUNPOD_WEBHOOK_POST_OUTPUT: `${base}/job-done/$RUNPOD_POD_ID/$ID${q}`,
      RUNPOD_WEBHOOK_POST_STREAM: `${base}/job-stream/$RUNPOD_POD_ID/$ID${q}`,
      RUNPOD_WEBHOOK_PING: `${base}/ping/$RUNPOD_POD_ID${q}`,
      RUNPOD_AI_API_KEY: this.#options.apiKey,
      RUNPOD_POD_ID: podId,
    };
  }

  /** Queues jobs for the worker to take. */
  enqueue(...jobs: PlatformJob[]): void {
    this.#queue.push(...jobs);
    this.#wake();
  }

  /** The next job-take calls answer these statuses (with no job), in order. */
  scriptTakes(...statuses: number[]): void {
    this.#takeScript.push(...statuses);
  }

  /** The next job-done posts answer these statuses (and are not kept), in order. */
  scriptOutputs(...statuses: number[]): void {
    this.#outputScript.push(...statuses);
  }

  /** Tells the worker, over the job-stop long poll, to stop these jobs. */
  stop(...jobIds: string[]): void {
    this.#stopsToSend.push(...jobIds);
    this.#wake();
  }

  /** The accepted (2xx) final post of a job, if any. */
  output(jobId: string): PostCall | undefined {
    return this.outputPosts.find((post) => post.jobId === jobId && post.status === 200);
  }

  /** Every chunk streamed for a job, in order (each stream post's `output` is a list of chunks). */
  streamed(jobId: string): unknown[] {
    return this.streamPosts
      .filter((post) => post.jobId === jobId)
      .flatMap((post) => post.body.output as unknown[]);
  }

  /** Resolves when `test()` holds (checked every 20 ms), or rejects after `timeoutMs`. */
  until(test: () => boolean, timeoutMs = 60_000, what = "the platform state"): Promise<void> {
    return waitFor(test, timeoutMs, what, 20);
  }

  /** Resolves with a job's accepted final post. */
  async waitForOutput(jobId: string, timeoutMs = 60_000): Promise<PostCall> {
    await this.until(() => this.output(jobId) !== undefined, timeoutMs, `the output of ${jobId}`);
    return this.output(jobId) as PostCall;
  }

  async close(): Promise<void> {
    for (const wake of this.#waiters) wake();
    this.#server.closeAllConnections();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }

  #wake(): void {
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const wake of waiters) wake();
  }

  #handle(request: http.IncomingMessage, response: http.ServerResponse): void {
    const chunks: Buffer[] = [];
    request.on("data", (chunk: Buffer) => chunks.push(chunk));
    request.on("end", () => {
      const url = new URL(request.url ?? "/", "http://platform");
      const callerRoute = url.pathname.split("/").filter(Boolean)[2] ?? "";
      if (hostedRoutes.has(callerRoute)) {
        void this.#hosted(request, response, url, Buffer.concat(chunks).toString("utf8"));
        return;
      }
      if (request.headers.authorization !== this.#options.apiKey) {
        this.unauthorized.push(url.pathname);
        response.writeHead(401).end();
        return;
      }
      if (url.searchParams.get("gpu") !== (this.#options.templateQuery ? "CPU" : null)) {
        response.writeHead(400).end("the template's query was lost");
        return;
      }
      const parts = url.pathname.split("/").filter(Boolean);
      // /v2/fake-endpoint/<route>/<pod id>[/<job id>]
      const route = parts[2];
      const text = Buffer.concat(chunks).toString("utf8");
      if (route === "job-take" || route === "job-take-batch") {
        void this.#take(response, url, route === "job-take-batch");
      } else if (route === "job-stop") {
        void this.#stopPoll(response);
      } else if (route === "ping") {
        const ids = url.searchParams.get("job_id");
        this.pings.push({
          at: performance.now(),
          jobIds: ids === null ? [] : ids.split(","),
          version: url.searchParams.get("runpod_version"),
        });
        response.writeHead(200).end();
      } else if ((route === "job-done" || route === "job-stream") && parts[4] !== undefined) {
        this.#post(request, response, url, route, decodeURIComponent(parts[4]), text);
      } else {
        response.writeHead(404).end();
      }
    });
  }

  async #take(response: http.ServerResponse, url: URL, batch: boolean): Promise<void> {
    const batchSizeText = url.searchParams.get("batch_size");
    const call: TakeCall = {
      at: performance.now(),
      batch,
      batchSize: batchSizeText === null ? undefined : Number(batchSizeText),
      jobInProgress: url.searchParams.get("job_in_progress"),
      outstanding: this.#outstanding.size,
      answeredAt: 0,
      status: 0,
      jobIds: [],
    };
    this.takes.push(call);
    const scripted = this.#takeScript.shift();
    if (scripted !== undefined) {
      call.status = scripted;
      response.writeHead(scripted).end(scripted === 429 ? "Too Many Requests" : "error");
      return;
    }
    const gone = this.#watchClose(response);
    await this.#hold(() => this.#queue.length > 0, gone);
    // A poll the worker gave up on gets nothing: a job handed to it would be lost.
    if (gone()) return;
    if (this.#queue.length === 0) {
      call.status = 204;
      response.writeHead(204).end();
      return;
    }
    const count = batch ? Math.max(1, call.batchSize ?? 1) : 1;
    const jobs = this.#queue.splice(0, count);
    for (const job of jobs) {
      if (typeof job.id === "string") {
        this.#outstanding.add(job.id);
        call.jobIds.push(job.id);
      }
    }
    call.status = 200;
    call.answeredAt = performance.now();
    response
      .writeHead(200, { "content-type": "application/json" })
      .end(JSON.stringify(batch ? jobs : jobs[0]));
  }

  /** A job's state as the hosted API reports it. */
  #view(jobId: string): Record<string, unknown> {
    const done = this.output(jobId);
    if (done !== undefined) {
      return done.body.error === undefined
        ? { id: jobId, status: "COMPLETED", output: done.body.output }
        : { id: jobId, status: "FAILED", error: done.body.error };
    }
    if (this.stopsDelivered.has(jobId)) return { id: jobId, status: "CANCELLED" };
    const taken = this.takes.some((take) => take.jobIds.includes(jobId));
    return { id: jobId, status: taken ? "IN_PROGRESS" : "IN_QUEUE" };
  }

  readonly #streamRead = new Map<string, number>();

  /** The hosted `/health`: job counts by state, and the one worker (no models: RunPod lists none). */
  #health(): Record<string, unknown> {
    const ids = new Set([
      ...this.takes.flatMap((take) => take.jobIds),
      ...this.#queue.flatMap((job) => (typeof job.id === "string" ? [job.id] : [])),
    ]);
    const jobs = { completed: 0, failed: 0, inProgress: 0, inQueue: 0, retried: 0 };
    for (const id of ids) {
      const status = this.#view(id).status;
      if (status === "COMPLETED") jobs.completed += 1;
      else if (status === "FAILED") jobs.failed += 1;
      else if (status === "IN_PROGRESS") jobs.inProgress += 1;
      else if (status === "IN_QUEUE") jobs.inQueue += 1;
    }
    return {
      jobs,
      workers: { idle: jobs.inProgress > 0 ? 0 : 1, running: jobs.inProgress > 0 ? 1 : 0 },
    };
  }

  async #hosted(
    request: http.IncomingMessage,
    response: http.ServerResponse,
    url: URL,
    text: string,
  ): Promise<void> {
    const reply = (status: number, body: unknown): void => {
      response.writeHead(status, { "content-type": "application/json" }).end(JSON.stringify(body));
    };
    if (request.headers.authorization !== `Bearer ${this.#options.userApiKey}`) {
      return reply(401, { error: "Unauthorized" });
    }
    const [, , route, id] = url.pathname.split("/").filter(Boolean);
    if (route === "health") return reply(200, this.#health());
    if (route === "run" || route === "runsync") {
      let input: unknown;
      try {
        input = (JSON.parse(text) as { input?: unknown }).input;
      } catch {
        return reply(400, { error: "the body is not JSON" });
      }
      const jobId = randomUUID();
      this.enqueue({ id: jobId, input });
      if (route === "run") return reply(200, { id: jobId, status: "IN_QUEUE" });
      const terminal = () =>
        ["COMPLETED", "FAILED", "CANCELLED"].includes(this.#view(jobId).status as string);
      await this.until(terminal, Number(url.searchParams.get("wait") ?? 90_000)).catch(() => {});
      return reply(200, this.#view(jobId));
    }
    if (id === undefined) return reply(404, { error: "not found" });
    const known =
      this.takes.some((take) => take.jobIds.includes(id)) ||
      this.#queue.some((job) => job.id === id);
    if (!known) return reply(404, { error: "job not found" });
    if (route === "status") return reply(200, this.#view(id));
    if (route === "status-sync") {
      const terminal = () =>
        ["COMPLETED", "FAILED", "CANCELLED"].includes(this.#view(id).status as string);
      await this.until(terminal, Number(url.searchParams.get("wait") ?? 90_000)).catch(() => {});
      return reply(200, this.#view(id));
    }
    if (route === "cancel") {
      this.stop(id);
      return reply(200, { id, status: "CANCELLED" });
    }
    // /stream: the posts since the previous poll, answered at once (no long poll).
    const posts = this.streamPosts.filter((post) => post.jobId === id);
    const from = this.#streamRead.get(id) ?? 0;
    this.#streamRead.set(id, posts.length);
    const { status } = this.#view(id);
    return reply(200, {
      status,
      stream: posts.slice(from).map((post) => ({ output: post.body.output })),
    });
  }

  /** Whether the worker hung up on a long poll (then it must get nothing). */
  #watchClose(response: http.ServerResponse): () => boolean {
    let closed = false;
    response.once("close", () => {
      closed = true;
      this.#wake();
    });
    return () => closed;
  }

  /** A long poll's wait: until `ready()`, the worker hangs up, or `holdMs` pass. */
  async #hold(ready: () => boolean, gone: () => boolean): Promise<void> {
    const deadline = performance.now() + this.#options.holdMs;
    while (!ready() && performance.now() < deadline && !gone()) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, Math.max(1, deadline - performance.now()));
        this.#waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  async #stopPoll(response: http.ServerResponse): Promise<void> {
    this.stopPolls.push({ at: performance.now() });
    if (this.#options.noStopChannel) {
      response.writeHead(404).end();
      return;
    }
    const gone = this.#watchClose(response);
    await this.#hold(() => this.#stopsToSend.length > 0, gone);
    if (gone()) return;
    if (this.#stopsToSend.length === 0) {
      response.writeHead(204).end();
      return;
    }
    const ids = this.#stopsToSend.splice(0);
    const at = performance.now();
    for (const id of ids) {
      this.stopsDelivered.set(id, at);
      this.stopsDeliveredAtDate.set(id, Date.now());
      this.#outstanding.delete(id);
    }
    response
      .writeHead(200, { "content-type": "application/json" })
      .end(JSON.stringify({ jobsToStop: ids }));
  }

  #post(
    request: http.IncomingMessage,
    response: http.ServerResponse,
    url: URL,
    route: "job-done" | "job-stream",
    jobId: string,
    text: string,
  ): void {
    let body: Record<string, unknown>;
    try {
      body = JSON.parse(text) as Record<string, unknown>;
    } catch {
      response.writeHead(400).end("not JSON");
      return;
    }
    const scripted = route === "job-done" ? this.#outputScript.shift() : undefined;
    const status = scripted ?? 200;
    const call: PostCall = {
      at: performance.now(),
      jobId,
      isStream: url.searchParams.get("isStream"),
      status,
      contentType: request.headers["content-type"],
      requestId: request.headers["x-request-id"] as string | undefined,
      body,
    };
    if (route === "job-done") {
      this.outputPosts.push(call);
      if (status === 200) this.#outstanding.delete(jobId);
    } else {
      this.streamPosts.push(call);
    }
    response.writeHead(status).end();
  }
}
