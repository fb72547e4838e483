/**
 * Which channel a gpu-worker's replies take, on a real Redis: on one server (and Sentinel) a plain
 * `PUBLISH` on the orchestrator's channel, the job's `replyTo`; on a cluster (`sharded`) an
 * `SPUBLISH` on the job's own shard channel. One server takes both kinds, so both are told apart
 * here by who hears them: a plain subscriber hears no sharded message, and the other way round.
 * (The cluster itself: tests/e2e/redis-cluster.test.ts.)
 */
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { after, before, describe, it } from "node:test";
import type { Redis } from "ioredis";
import { ReplyPublisher } from "../../gpu-worker/publish/reply-publisher.js";
import { FernetKey, KeyRing } from "../../shared/crypto/index.js";
import { createLogger } from "../../shared/log.js";
import { RedisNames } from "../../shared/naming.js";
import { decodeEnvelope } from "../../shared/protocol/index.js";
import { closeRedis, createRedis } from "../../shared/redis/index.js";
import { deleteKeysWithPrefix, testRedisUrl, uniquePrefix } from "../support/redis.js";
import { waitFor } from "../support/wait-for.js";

const log = createLogger("test", { level: "error" });
const keyRing = new KeyRing([FernetKey.generate()]);

let url: string;
let prefix: string;
let names: RedisNames;
const connections: Redis[] = [];

function connect(label: string): Redis {
  const redis = createRedis(url, `${prefix}-${label}`, log);
  connections.push(redis);
  return redis;
}

before(async () => {
  url = await testRedisUrl();
  prefix = uniquePrefix("reply-channels");
  names = new RedisNames(prefix);
});

after(async () => {
  await Promise.all(connections.map((redis) => closeRedis(redis)));
  await deleteKeysWithPrefix(url, prefix);
});

/**
 * Runs one job's replies (claimed, a delta, done) through a publisher, and returns what a plain
 * subscriber of the orchestrator's channel and a sharded one of the job's channel heard: the kinds
 * of the envelopes (`started`, or the seq).
 */
async function heardBy(sharded: boolean) {
  const jobId = randomUUID();
  const replyTo = names.replyChannel(`orch-${sharded}`);
  const jobChannel = names.jobReplyChannel(jobId);
  const heard = { plain: [] as string[], sharded: [] as string[] };
  const kindOf = (text: string) => {
    const envelope = decodeEnvelope(text);
    return envelope === undefined ? "junk" : "e" in envelope ? envelope.e : String(envelope.s);
  };
  const plain = connect(`plain-${sharded}`);
  plain.on("message", (_channel: string, text: string) => heard.plain.push(kindOf(text)));
  await plain.subscribe(replyTo);
  const shard = connect(`shard-${sharded}`);
  shard.on("smessage", (_channel: string, text: string) => heard.sharded.push(kindOf(text)));
  await shard.ssubscribe(jobChannel);
  const publisher = new ReplyPublisher({
    redis: connect(`pub-${sharded}`),
    names,
    keyRing,
    streamTtlSeconds: 60,
    workerId: "gpu-a",
    sharded,
    log,
  });
  const replies = publisher.forJob(jobId, replyTo, 1);
  assert.equal(await replies.claim(), true);
  replies.text("hello");
  await replies.end({
    kind: "done",
    finishReason: "stop",
    promptTokens: 1,
    completionTokens: 1,
    runMs: 1,
  });
  const expected = sharded ? heard.sharded : heard.plain;
  await waitFor(() => expected.length === 3, 5000, "the three messages", 10);
  // Whatever else came would have arrived by now: the one connection keeps its order.
  await plain.ping();
  await shard.ping();
  return heard;
}

describe("reply channels", () => {
  it("one server: plain PUBLISH on the orchestrator's channel, nothing on the job's shard channel", async () => {
    assert.deepEqual(await heardBy(false), { plain: ["started", "0", "1"], sharded: [] });
  });

  it("a cluster: SPUBLISH on the job's shard channel, nothing on the orchestrator's channel", async () => {
    assert.deepEqual(await heardBy(true), { plain: [], sharded: ["started", "0", "1"] });
  });
});
