/**
 * The real product, started the way users start it: the orchestrator and the gpu-worker as child
 * processes of their compiled entry points, on real Redis (a unique prefix) and a generated model.
 * Tests talk to it over HTTP like any client. Every log line both processes write is captured.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { longPollStream } from "../../client/index.js";
import { FernetKey, KeyRing } from "../../shared/crypto/index.js";
import { messageOf } from "../../shared/errors/index.js";
import { RedisNames } from "../../shared/naming.js";
import {
  decryptChunk,
  isEncryptedChunk,
  isFinalChunk,
  type OutputChunk,
  type StreamChunk,
} from "../../shared/protocol/index.js";
import { freePort } from "../../shared/redis/index.js";
import { parseOwner } from "../../shared/registry/job-owner.js";
import { nativeStacks } from "./native-stacks.js";
import { deleteKeysWithPrefix, testRedisUrl, uniquePrefix } from "./redis.js";
import { waitFor } from "./wait-for.js";

const distRoot = fileURLToPath(new URL("../../", import.meta.url));

export interface StackOptions {
  /** The `MODELS` value. */
  models: string;
  /** More environment for both processes (e.g. CONTEXT_SIZE, MODEL_SEQUENCES). */
  env?: Record<string, string>;
  /** Environment for the gpu-worker only, over `env`. */
  gpuWorkerEnv?: Record<string, string>;
  label?: string;
  /**
   * RunPod worker mode: the platform's `RUNPOD_*` variables (from the fake platform). The stack
   * then serves no local API; it is ready when the job loop runs and every model is loaded.
   */
  runpod?: Record<string, string>;
  /** A Redis of the test's own (which it may stop); its keys are then left to the test. */
  redisUrl?: string;
  /**
   * Instead of a URL: the environment that names a Redis Cluster or Sentinel-managed primary of the
   * test's own (`REDIS_CLUSTER_NODES`, `REDIS_SENTINELS`...); its keys are then left to the test,
   * and `redisUrl` is "".
   */
  redisEnv?: Record<string, string>;
  /** How many models must be ready before `start` resolves (default: all of `models`). */
  readyModels?: number;
  /** `API_KEY` for both processes; `get` and `post` then send it as a Bearer token. */
  apiKey?: string;
}

export interface JobView {
  id: string;
  status: string;
  output?: StreamChunk[];
  error?: string;
  delayTime?: number;
  executionTime?: number;
}

export class TestStack {
  readonly logs: string[] = [];
  readonly #children: ChildProcess[] = [];
  readonly #logsOf = new Map<ChildProcess, string[]>();
  #gpuWorkerEnv: Record<string, string> = {};
  #orchestratorEnv: Record<string, string> = {};
  /** Sent with every request when the stack has an API key. */
  #authorization: Record<string, string> = {};
  /** Whether the stack uses the shared test Redis (and so deletes its keys when it stops). */
  #ownRedis = true;

  private constructor(
    readonly url: string,
    readonly redisUrl: string,
    readonly prefix: string,
    /** The `ENCRYPTION_KEY` both processes were given. */
    readonly key: string,
    readonly dataDir: string,
  ) {
    this.keyRing = KeyRing.parse(key);
    this.names = new RedisNames(prefix);
  }

  readonly keyRing: KeyRing;
  /** The names of the stack's Redis keys, under its prefix. */
  readonly names: RedisNames;

  static async start(options: StackOptions): Promise<TestStack> {
    const entry = (part: string) => path.join(distRoot, part, "main.js");
    if (!existsSync(entry("orchestrator"))) {
      throw new Error("compiled entry points are missing: run `npm run build` first");
    }
    const redisUrl =
      options.redisEnv === undefined ? (options.redisUrl ?? (await testRedisUrl())) : "";
    const prefix = uniquePrefix(options.label ?? "stack");
    const key = FernetKey.generate();
    const port = await freePort();
    const dataDir = await mkdtemp(path.join(os.tmpdir(), "pool-stack-"));
    const stack = new TestStack(
      `http://127.0.0.1:${port}`,
      redisUrl,
      prefix,
      key.exportKey(),
      dataDir,
    );
    const env = {
      PATH: process.env.PATH ?? "",
      HOME: process.env.HOME ?? os.homedir(),
      ...(process.env.STACK_NODE_OPTIONS === undefined
        ? {}
        : { NODE_OPTIONS: process.env.STACK_NODE_OPTIONS }),
      ...(options.redisEnv ?? { REDIS_URL: redisUrl }),
      REDIS_PREFIX: prefix,
      MODELS: options.models,
      ENCRYPTION_KEY: key.exportKey(),
      HOST: "127.0.0.1",
      PORT: String(port),
      DATA_DIR: dataDir,
      LLAMA_THREADS: "1",
      LLAMA_GPU: "off",
      ...(options.apiKey === undefined ? {} : { API_KEY: options.apiKey }),
      ...options.runpod,
      ...options.env,
    };
    if (options.apiKey !== undefined) {
      stack.#authorization = { authorization: `Bearer ${options.apiKey}` };
    }
    stack.#ownRedis = options.redisUrl === undefined && options.redisEnv === undefined;
    stack.#gpuWorkerEnv = { ...env, ...options.gpuWorkerEnv };
    stack.#spawn("gpu-worker", stack.#gpuWorkerEnv);
    stack.#orchestratorEnv = env;
    stack.#spawn("orchestrator", env);
    const modelCount = options.readyModels ?? options.models.split(",").length;
    if (options.runpod === undefined) await stack.#waitUntilServing(modelCount);
    else await stack.#waitForLogs(modelCount);
    return stack;
  }

  #spawn(part: "gpu-worker" | "orchestrator", env: Record<string, string>): ChildProcess {
    const child = spawn(
      process.execPath,
      ["--enable-source-maps", path.join(distRoot, part, "main.js")],
      { env, stdio: ["ignore", "pipe", "pipe"] },
    );
    const own: string[] = [];
    for (const stream of [child.stdout, child.stderr]) {
      stream?.setEncoding("utf8");
      stream?.on("data", (text: string) => {
        const lines = text.split("\n").filter(Boolean);
        this.logs.push(...lines);
        own.push(...lines);
      });
    }
    this.#logsOf.set(child, own);
    this.#children.push(child);
    return child;
  }

  /** Kills the running gpu-worker processes with `signal` and waits for them to exit. */
  async killGpuWorkers(signal: NodeJS.Signals): Promise<void> {
    const workers = this.#children.filter(
      (child) =>
        child.spawnargs.some((arg) => arg.includes("gpu-worker")) && child.exitCode === null,
    );
    await Promise.all(
      workers.map(
        (child) =>
          new Promise<void>((resolve) => {
            child.once("exit", () => resolve());
            child.kill(signal);
          }),
      ),
    );
  }

  /**
   * Kills the orchestrator with `signal`, starts a new one with the same settings (same port, same
   * Redis), and resolves when it answers `/health` (a RunPod worker: when it takes jobs). Returns
   * the new process.
   */
  async restartOrchestrator(signal: NodeJS.Signals): Promise<ChildProcess> {
    const old = this.orchestrator;
    if (old !== undefined && old.exitCode === null && old.signalCode === null) {
      await new Promise<void>((resolve) => {
        old.once("exit", () => resolve());
        old.kill(signal);
      });
    }
    const child = this.#spawn("orchestrator", this.#orchestratorEnv);
    const runpod = this.#orchestratorEnv.RUNPOD_POD_ID !== undefined;
    await waitFor(
      async () => {
        if (child.exitCode !== null) {
          throw new Error(`the new orchestrator exited:\n${this.logs.join("\n")}`);
        }
        if (runpod) return this.logsOf(child).some((line) => line.includes("taking jobs"));
        return this.get("/health").then(
          () => true,
          () => false, // Not listening yet.
        );
      },
      60_000,
      "the new orchestrator to start",
      100,
    );
    return child;
  }

  /**
   * Starts one more orchestrator on the same Redis, with the stack's settings on a port of its
   * own; resolves with its URL once it answers `/health`.
   */
  async addOrchestrator(): Promise<string> {
    const port = await freePort();
    const url = `http://127.0.0.1:${port}`;
    const child = this.#spawn("orchestrator", { ...this.#orchestratorEnv, PORT: String(port) });
    await waitFor(
      async () => {
        if (child.exitCode !== null) {
          throw new Error(`the other orchestrator exited:\n${this.logs.join("\n")}`);
        }
        return fetch(`${url}/health`, { headers: this.#authorization }).then(
          () => true,
          () => false, // Not listening yet.
        );
      },
      60_000,
      "the other orchestrator to start",
      100,
    );
    return url;
  }

  /**
   * Starts a job (by default a long greedy one) and kills the gpu-workers with SIGKILL at its
   * first delta (however long that takes). Resolves once they are dead, with the job's stream (still being read) and
   * when they died.
   */
  async killGpuWorkersAtFirstDelta(
    request: unknown = {
      prompt: "the dog",
      sampling_params: { max_tokens: 4000, temperature: 0 },
    },
  ): Promise<{
    job: JobView;
    streamed: ReturnType<TestStack["streamAll"]>;
    killedAt: number;
  }> {
    const job = await this.run(request);
    let killed: Promise<void> | undefined;
    const streamed = this.streamAll(job.id, (chunk) => {
      if (killed === undefined && !isFinalChunk(chunk)) killed = this.killGpuWorkers("SIGKILL");
    });
    await waitFor(() => killed !== undefined, 60_000, "the job's first delta");
    await killed;
    return { job, streamed, killedAt: performance.now() };
  }

  /**
   * The live gpu-worker process that claimed `attempt` of a job: its owner key (read through
   * `redis`, any client of the stack's Redis) names its registry id, which it logs at start.
   */
  async gpuWorkerOwning(
    redis: { get(key: string): Promise<string | null> },
    jobId: string,
    attempt = 1,
  ): Promise<ChildProcess> {
    let workerId = "";
    await waitFor(
      async () => {
        const owner = parseOwner(await redis.get(this.names.ownerKey(jobId)));
        workerId = owner?.attempt === attempt ? owner.workerId : "";
        return workerId !== "";
      },
      30_000,
      `attempt ${attempt}'s claim`,
      5,
    );
    const child = this.gpuWorkers.find(
      (worker) =>
        worker.exitCode === null &&
        this.logsOf(worker).some(
          (line) => line.includes("gpu-worker starting") && line.includes(workerId),
        ),
    );
    if (child === undefined)
      throw new Error(`the gpu-worker ${workerId} is not one of the stack's`);
    return child;
  }

  /** The log lines of one of the stack's processes. */
  logsOf(child: ChildProcess): readonly string[] {
    return this.#logsOf.get(child) ?? [];
  }

  /**
   * Starts one more gpu-worker with the stack's settings (`env` overrides some, e.g. `MODELS` for
   * a gpu-worker that serves other models); resolves when it is up: its scheduler started, having
   * loaded what it preloads (`gpu-worker ready`).
   */
  async addGpuWorker(env: Record<string, string> = {}): Promise<ChildProcess> {
    const child = this.#spawn("gpu-worker", { ...this.#gpuWorkerEnv, ...env });
    await waitFor(
      () => {
        if (child.exitCode !== null)
          throw new Error(`the gpu-worker exited:\n${this.logs.join("\n")}`);
        return this.logsOf(child).some((line) => line.includes("gpu-worker ready"));
      },
      60_000,
      "the gpu-worker to start",
      100,
    ).catch(async (error: unknown) => {
      throw new Error(
        `${messageOf(error)}\n--- its logs ---\n${this.logsOf(child).join("\n")}` +
          (await this.#stacksOf([child])),
      );
    });
    return child;
  }
  async #waitForLogs(modelCount: number): Promise<void> {
    const count = (text: string) => this.logs.filter((line) => line.includes(text)).length;
    await this.#explainStart(
      waitFor(
        () => {
          if (this.#children.some((child) => child.exitCode !== null)) {
            throw new Error(`a stack process exited:\n${this.logs.join("\n")}`);
          }
          return count("RunPod worker started") >= 1 && count("model ready") >= modelCount;
        },
        60_000,
        "the RunPod stack to start",
        50,
      ),
    );
  }

  /** The gpu-worker processes, in the order they were started. */
  get gpuWorkers(): ChildProcess[] {
    return this.#children.filter((child) =>
      child.spawnargs.some((arg) => arg.includes("gpu-worker")),
    );
  }

  /** The orchestrator's process (the latest one started). */
  get orchestrator(): ChildProcess | undefined {
    return this.#children.findLast((child) =>
      child.spawnargs.some((arg) => arg.includes("orchestrator")),
    );
  }

  async #waitUntilServing(modelCount: number): Promise<void> {
    const serving = async () => {
      for (const child of this.#children) {
        if (child.exitCode !== null) {
          throw new Error(
            `a stack process exited with ${child.exitCode}:\n${this.logs.join("\n")}`,
          );
        }
      }
      try {
        const health = (await this.get("/health")) as { models: { state: string }[] };
        return health.models.filter((model) => model.state === "ready").length >= modelCount;
      } catch {
        return false; // Not listening yet.
      }
    };
    await this.#explainStart(waitFor(serving, 60_000, "the stack to start", 100));
  }

  /** As `explain`, with the native stacks of the gpu-workers still running (a start that hangs). */
  async #explainStart<T>(promise: Promise<T>): Promise<T> {
    try {
      return await promise;
    } catch (error) {
      const stacks = await this.#stacksOf(this.gpuWorkers);
      throw new Error(`${messageOf(error)}\n--- stack logs ---\n${this.logs.join("\n")}${stacks}`);
    }
  }

  /** Each live one's native stacks, under a heading. */
  async #stacksOf(children: readonly ChildProcess[]): Promise<string> {
    const live = children.filter((child) => child.exitCode === null && child.pid !== undefined);
    const stacks = await Promise.all(
      live.map(
        async (child) =>
          `\n--- native stacks of ${child.pid} ---\n${await nativeStacks(child.pid ?? 0)}`,
      ),
    );
    return stacks.join("");
  }

  /** `promise`, whose failure is rethrown with every log line so far (for diagnosis). */
  async explain<T>(promise: Promise<T>): Promise<T> {
    try {
      return await promise;
    } catch (error) {
      const message = messageOf(error);
      throw new Error(`${message}\n--- stack logs ---\n${this.logs.join("\n")}`);
    }
  }

  /** Encrypts a request the way a caller does. */
  encrypt(request: unknown): string {
    return this.keyRing.encrypt(JSON.stringify(request));
  }

  async post(route: string, body: unknown): Promise<unknown> {
    const response = await fetch(`${this.url}${route}`, {
      method: "POST",
      headers: { "content-type": "application/json", ...this.#authorization },
      body: typeof body === "string" ? body : JSON.stringify(body),
    });
    return response.json();
  }

  /** `headers`: more, e.g. a named client's `X-Client-Token`. */
  async get(route: string, headers: Record<string, string> = {}): Promise<unknown> {
    return (
      await fetch(`${this.url}${route}`, { headers: { ...headers, ...this.#authorization } })
    ).json();
  }

  /** `/run` with an encrypted request. */
  async run(request: unknown): Promise<JobView> {
    return (await this.post("/run", {
      input: { encrypted_input: this.encrypt(request) },
    })) as JobView;
  }

  /** `/runsync` with an encrypted request. */
  async runsync(request: unknown): Promise<JobView> {
    return (await this.post("/runsync", {
      input: { encrypted_input: this.encrypt(request) },
    })) as JobView;
  }

  /**
   * Polls `/stream` until the job is terminal and drained; returns every chunk (encrypted ones
   * opened with the stack's key; `raw` has them as served) and the status.
   */
  async streamAll(
    id: string,
    onChunk?: (chunk: StreamChunk) => void,
    headers: Record<string, string> = {},
  ): Promise<{ status: string; chunks: StreamChunk[]; raw: OutputChunk[]; error?: string }> {
    const chunks: StreamChunk[] = [];
    const raw: OutputChunk[] = [];
    const poll = async () =>
      (await this.get(`/stream/${id}?wait=10000`, headers)) as {
        status: string;
        stream: { output: OutputChunk }[];
        error?: string;
      };
    let status = "";
    let error: string | undefined;
    for await (const page of longPollStream(poll)) {
      ({ status, error } = page);
      for (const { output } of page.stream) {
        raw.push(output);
        const chunk = this.open(output);
        chunks.push(chunk);
        onChunk?.(chunk);
      }
      const last = chunks.at(-1);
      if (status === "COMPLETED" && last !== undefined && isFinalChunk(last)) break;
    }
    return { status, chunks, raw, ...(error ? { error } : {}) };
  }

  /** A chunk as served, opened with the stack's key when encrypted. */
  open(chunk: OutputChunk): StreamChunk {
    if (!isEncryptedChunk(chunk)) return chunk;
    const opened = decryptChunk(this.keyRing, chunk);
    if (opened === undefined) throw new Error(`encrypted chunk seq ${chunk.seq} does not open`);
    return opened;
  }

  /**
   * SIGTERM to both processes and waits for them (SIGKILL after 40 s); then deletes the prefix's
   * keys and the data folder.
   */
  async stop(): Promise<void> {
    await Promise.all(
      this.#children.map(
        (child) =>
          new Promise<void>((resolve) => {
            if (child.exitCode !== null || child.signalCode !== null) return resolve();
            const timer = setTimeout(() => child.kill("SIGKILL"), 40_000);
            child.once("exit", () => {
              clearTimeout(timer);
              resolve();
            });
            child.kill("SIGTERM");
          }),
      ),
    );
    if (this.#ownRedis) await deleteKeysWithPrefix(this.redisUrl, this.prefix);
    await rm(this.dataDir, { recursive: true, force: true });
  }

  /** Sends a signal to both processes without waiting. */
  signal(signal: NodeJS.Signals): void {
    for (const child of this.#children) child.kill(signal);
  }

  /** Waits for both processes to exit; their exit codes. */
  async exited(): Promise<(number | null)[]> {
    return Promise.all(
      this.#children.map(
        (child) =>
          new Promise<number | null>((resolve) => {
            if (child.exitCode !== null || child.signalCode !== null) resolve(child.exitCode);
            else child.once("exit", (code) => resolve(code));
          }),
      ),
    );
  }

  /** Exit codes of the processes (null while running). */
  get exitCodes(): (number | null)[] {
    return this.#children.map((child) => child.exitCode);
  }
}

/** The text of a job's chunks. */
export function textOf(chunks: readonly StreamChunk[]): string {
  return chunks.map((chunk) => ("delta" in chunk ? chunk.delta : "")).join("");
}
