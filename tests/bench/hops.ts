/**
 * The floor under the stack's time to first token: the same hops between processes, threads and
 * Redis that a job makes before its first text reaches the caller, with no work in any of them (no
 * BullMQ, no encryption, no validation, no model):
 *
 *   caller ─HTTP POST /run→ front ─EVAL (the queue place)→ Redis ─LPUSH (the queue)→ Redis
 *     → back (blocked in BRPOP) ─EVAL (the hand-over: BullMQ's move to active)→ Redis
 *     → back's thread (postMessage) → back (its first text) ─EVAL+PUBLISH (the reply)→ Redis
 *     → front (subscribed) → the caller's waiting `GET /stream` long poll.
 *
 * "front" stands for the orchestrator and "back" for the gpu-worker (`hops-process.ts`), each a
 * process of its own, as in the stack. Measured twice: requests back to back, and with 60 ms of
 * idle between them (as in the serving benchmark, where raw node-llama-cpp runs between the
 * stack's requests, and as a caller's requests mostly arrive). Used by `npm run bench -- hops` and
 * by the GPU check.
 */
import { type ChildProcess, fork } from "node:child_process";
import { fileURLToPath } from "node:url";
import { deleteKeysWithPrefix } from "../support/redis.js";
import { closeLeanHttp, requestJson } from "./lean-http.js";

export interface HopsSamples {
  /** Milliseconds from `/run` to the first text, requests back to back. */
  backToBack: number[];
  /** The same with 60 ms of idle before each request. */
  idle: number[];
}

/** Runs `runs` requests each way through the two stand-in processes, on the Redis at `redisUrl`. */
export async function measureHops(options: {
  redisUrl: string;
  runs: number;
}): Promise<HopsSamples> {
  const { redisUrl, runs } = options;
  const entry = fileURLToPath(new URL("./hops-process.js", import.meta.url));
  const prefix = `hops-${process.pid}-${Date.now()}`;
  const env = { ...process.env, REDIS_URL: redisUrl, HOPS_PREFIX: prefix };
  const started = (child: ChildProcess) =>
    new Promise<{ port?: number }>((resolve, reject) => {
      child.once("message", resolve);
      child.once("exit", (code) => reject(new Error(`a hops process exited with ${code}`)));
    });
  const back = fork(entry, ["back"], { env });
  const front = fork(entry, ["front"], { env });
  try {
    await started(back);
    const { port } = await started(front);
    const url = `http://127.0.0.1:${port}`;
    const once = async () => {
      const start = performance.now();
      const job = (await requestJson(`${url}/run`, {
        input: { encrypted_input: "x".repeat(300) },
      })) as { id: string };
      await requestJson(`${url}/stream/${job.id}`);
      return performance.now() - start;
    };
    for (let i = 0; i < 20; i += 1) await once();
    const backToBack: number[] = [];
    for (let i = 0; i < runs; i += 1) backToBack.push(await once());
    const idle: number[] = [];
    for (let i = 0; i < runs; i += 1) {
      await new Promise((resolve) => setTimeout(resolve, 60));
      idle.push(await once());
    }
    return { backToBack, idle };
  } finally {
    closeLeanHttp();
    back.kill();
    front.kill();
    await deleteKeysWithPrefix(redisUrl, prefix);
  }
}
