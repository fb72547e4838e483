/**
 * `npm run bench -- hops`: the floor under the stack's time to first token on this machine — the
 * same hops between processes, threads and Redis that a job makes before its first text reaches
 * the caller, with no work in any of them (no BullMQ, no encryption, no validation, no model):
 *
 *   caller ─HTTP POST /run→ front ─EVAL (the queue place)→ Redis ─LPUSH (the queue)→ Redis
 *     → back (blocked in BRPOP) ─EVAL (the hand-over: BullMQ's move to active)→ Redis
 *     → back's thread (postMessage) → back (its first text) ─EVAL+PUBLISH (the reply)→ Redis
 *     → front (subscribed) → the caller's waiting `GET /stream` long poll.
 *
 * "front" stands for the orchestrator and "back" for the gpu-worker; each is a process of its own,
 * as in the stack. Measured twice: requests back to back, and with 60 ms of idle between them (as
 * in `npm run bench -- serving`, where raw node-llama-cpp runs between the stack's requests, and as
 * a caller's requests mostly arrive). Compare with the stack's overhead in the serving benchmark.
 *
 *   npm run bench -- hops
 */
import { type ChildProcess, fork } from "node:child_process";
import http from "node:http";
import { fileURLToPath } from "node:url";
import { Worker } from "node:worker_threads";
import { Redis } from "ioredis";
import { freePort } from "../../shared/redis/index.js";
import { deleteKeysWithPrefix } from "../support/redis.js";
import { benchRuns, print, row, tableHead } from "./bench-stats.js";
import { closeLeanHttp, requestJson } from "./lean-http.js";

const role = process.argv[2];
const redisUrl = process.env.REDIS_URL ?? "redis://127.0.0.1:6379";
const prefix = `hops-${process.env.HOPS_ID ?? process.pid}`;
const queueKey = `${prefix}:queue`;
const channel = `${prefix}:replies`;
/** Stand-ins for the stack's scripts: a few commands each, like ours. */
const placeScript = "redis.call('ZADD', KEYS[1], 0, ARGV[1]); return redis.call('ZCARD', KEYS[1])";
const handOverScript = "redis.call('SET', KEYS[1], ARGV[1], 'PX', 60000); return 1";
const replyScript =
  "redis.call('XADD', KEYS[1], '*', 't', ARGV[1]); redis.call('PEXPIRE', KEYS[1], 60000); return redis.call('PUBLISH', ARGV[2], ARGV[1])";

if (role === "front") await front();
else if (role === "back") await back();
else await measure();

/** The orchestrator's stand-in: `/run` queues, `/stream/:id` waits for the first reply. */
async function front(): Promise<void> {
  const redis = new Redis(redisUrl);
  const subscriber = new Redis(redisUrl);
  const waiting = new Map<string, http.ServerResponse>();
  const arrived = new Set<string>();
  await subscriber.subscribe(channel);
  subscriber.on("message", (_channel: string, id: string) => {
    const response = waiting.get(id);
    if (response === undefined) {
      arrived.add(id);
      return;
    }
    waiting.delete(id);
    response.setHeader("content-type", "application/json");
    response.end(JSON.stringify({ id, stream: [{ output: "text" }] }));
  });
  let next = 0;
  const server = http.createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on("data", (chunk: Buffer) => chunks.push(chunk));
    request.on("end", async () => {
      if (request.method === "POST") {
        JSON.parse(Buffer.concat(chunks).toString("utf8"));
        next += 1;
        const id = `job-${next}`;
        await redis.eval(placeScript, 1, `${prefix}:places`, id);
        await redis.lpush(queueKey, id);
        response.setHeader("content-type", "application/json");
        response.end(JSON.stringify({ id, status: "IN_QUEUE" }));
        return;
      }
      const id = request.url?.split("/").pop() ?? "";
      if (arrived.delete(id)) {
        response.setHeader("content-type", "application/json");
        response.end(JSON.stringify({ id, stream: [{ output: "text" }] }));
      } else {
        waiting.set(id, response);
      }
    });
  });
  const port = await freePort();
  server.listen(port, "127.0.0.1", () => process.send?.({ port }));
}

/** The gpu-worker's stand-in: takes a job, hands it to its thread, sends the thread's text. */
async function back(): Promise<void> {
  const blocking = new Redis(redisUrl);
  const redis = new Redis(redisUrl);
  const thread = new Worker(
    "const { parentPort } = require('node:worker_threads'); parentPort.on('message', (id) => parentPort.postMessage(id));",
    { eval: true },
  );
  thread.on("message", (id: string) => {
    void redis.eval(replyScript, 1, `${prefix}:stream:${id}`, id, channel);
  });
  process.send?.({ ready: true });
  for (;;) {
    const taken = await blocking.brpop(queueKey, 0);
    if (taken === null) continue;
    const id = taken[1];
    await redis.eval(handOverScript, 1, `${prefix}:owner:${id}`, id);
    thread.postMessage(id);
  }
}

/** The caller: `/run`, then one `/stream` long poll; time to its answer. */
async function measure(): Promise<void> {
  const runs = Math.max(benchRuns(200), 20);
  const self = fileURLToPath(import.meta.url);
  const env = { ...process.env, HOPS_ID: String(process.pid) };
  const started = (child: ChildProcess) =>
    new Promise<{ port?: number }>((resolve) => child.once("message", resolve));
  const backProcess = fork(self, ["back"], { env });
  const frontProcess = fork(self, ["front"], { env });
  await started(backProcess);
  const { port } = await started(frontProcess);
  const url = `http://127.0.0.1:${port}`;
  const once = async () => {
    const start = performance.now();
    const job = (await requestJson(`${url}/run`, {
      input: { encrypted_input: "x".repeat(300) },
    })) as {
      id: string;
    };
    await requestJson(`${url}/stream/${job.id}`);
    return performance.now() - start;
  };
  try {
    for (let i = 0; i < 20; i += 1) await once();
    const backToBack: number[] = [];
    for (let i = 0; i < runs; i += 1) backToBack.push(await once());
    const idle: number[] = [];
    for (let i = 0; i < runs; i += 1) {
      await new Promise((resolve) => setTimeout(resolve, 60));
      idle.push(await once());
    }
    print([
      `The stack's hops with nothing in them (see the file's header): separate front and back processes, a thread, a local Redis; ${runs} requests each way.`,
      "",
      ...tableHead,
      row("first text, requests back to back", backToBack, "ms", 2),
      row("first text, 60 ms idle between requests", idle, "ms", 2),
    ]);
  } finally {
    closeLeanHttp();
    backProcess.kill();
    frontProcess.kill();
    await deleteKeysWithPrefix(redisUrl, prefix);
  }
}
