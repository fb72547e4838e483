/**
 * The two processes of `npm run bench -- hops` (see `hops.ts`): `node hops-process.js front`
 * stands for the orchestrator, `node hops-process.js back` for the gpu-worker. Each tells its
 * parent when it is ready (`front` with its port). `REDIS_URL` and `HOPS_PREFIX` come from the
 * parent.
 */
import http from "node:http";
import { Worker } from "node:worker_threads";
import { Redis } from "ioredis";
import { freePort } from "../../shared/redis/index.js";

const redisUrl = process.env.REDIS_URL ?? "redis://127.0.0.1:6379";
const prefix = process.env.HOPS_PREFIX ?? `hops-${process.pid}`;
const queueKey = `${prefix}:queue`;
const channel = `${prefix}:replies`;
/** Stand-ins for the stack's scripts: a few commands each, like ours. */
const placeScript = "redis.call('ZADD', KEYS[1], 0, ARGV[1]); return redis.call('ZCARD', KEYS[1])";
const handOverScript = "redis.call('SET', KEYS[1], ARGV[1], 'PX', 60000); return 1";
const replyScript =
  "redis.call('XADD', KEYS[1], '*', 't', ARGV[1]); redis.call('PEXPIRE', KEYS[1], 60000); return redis.call('PUBLISH', ARGV[2], ARGV[1])";

const role = process.argv[2];
if (role === "front") await front();
else if (role === "back") await back();
else throw new Error("usage: hops-process.js front|back");

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
