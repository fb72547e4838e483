/**
 * The reply path end to end on a real Redis: a gpu-worker's ReplyPublisher writes each job's
 * numbered replies to the job's stream and the orchestrator's channel; the orchestrator's
 * ReplyRelay hands them to the job, whose JobReplies takes them in order, the relay repairing gaps
 * and reconnects from the stream.
 */
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { after, before, describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import type { Redis } from "ioredis";
import { ReplyPublisher } from "../../gpu-worker/publish/reply-publisher.js";
import { JobReplies } from "../../orchestrator/relay/job-replies.js";
import { ReplyRelay } from "../../orchestrator/relay/reply-relay.js";
import { FernetKey, KeyRing } from "../../shared/crypto/index.js";
import { createLogger } from "../../shared/log.js";
import { RedisNames } from "../../shared/naming.js";
import { encodeReply, type ReplyMessage } from "../../shared/protocol/index.js";
import { closeRedis, createRedis } from "../../shared/redis/index.js";
import { endedOwner } from "../../shared/registry/job-owner.js";
import {
  deleteKeysWithPrefix,
  keysWithPrefix,
  testRedisUrl,
  uniquePrefix,
} from "../support/redis.js";
import { waitFor } from "../support/wait-for.js";

const log = createLogger("test", { level: "error" });
const keyRing = new KeyRing([FernetKey.generate()]);
const streamTtlSeconds = 120;
const doneFields = {
  kind: "done",
  finishReason: "stop",
  promptTokens: 3,
  completionTokens: 7,
  runMs: 12,
} as const;

let url: string;
let prefix: string;
let names: RedisNames;
/** Every connection opened here, closed in `after`. */
const connections: Redis[] = [];
const relays: ReplyRelay[] = [];
/** Each relay's jobs, as the job service holds them. */
const targetsOf = new Map<ReplyRelay, Map<string, JobReplies>>();

function connect(label: string): Redis {
  const redis = createRedis(url, `${prefix}-${label}`, log);
  connections.push(redis);
  return redis;
}

/** An orchestrator's side: a relay with its own subscriber and command connections. */
async function startRelay(label: string) {
  const subscriberName = `${prefix}-${label}-sub`;
  const subscriber = connect(`${label}-sub`);
  const targets = new Map<string, JobReplies>();
  const relay = new ReplyRelay({
    subscriber,
    redis: connect(`${label}-cmd`),
    names,
    orchestratorId: `orch-${label}`,
    targets,
    log,
  });
  relays.push(relay);
  targetsOf.set(relay, targets);
  await relay.start();
  return { relay, subscriber, subscriberName };
}

/** A gpu-worker's side. */
function publisher(redis: Redis): ReplyPublisher {
  return new ReplyPublisher({
    redis,
    names,
    keyRing,
    streamTtlSeconds,
    workerId: "gpu-a",
    sharded: false,
    log,
  });
}

/** Replies of a job this gpu-worker claimed (as it does before it runs one). */
async function claimedReplies(redis: Redis, jobId: string, replyTo: string, attempt = 1) {
  const replies = publisher(redis).forJob(jobId, replyTo, attempt);
  assert.equal(await replies.claim(), true, "the job is claimed");
  return replies;
}

/** Tracks a job on the relay and records what it hands over, and when. */
function collect(relay: ReplyRelay, jobId: string) {
  const messages: ReplyMessage[] = [];
  const arrivals: number[] = [];
  let started = 0;
  let unreadable = 0;
  let resolveEnd: () => void = () => {};
  const ended = new Promise<void>((resolve) => {
    resolveEnd = resolve;
  });
  const targets = targetsOf.get(relay);
  assert.ok(targets !== undefined);
  const replies: JobReplies = new JobReplies({
    jobId,
    keyRing,
    log,
    onStarted: () => {
      started += 1;
    },
    onUnreadable: () => {
      unreadable += 1;
    },
    onReply: (message) => {
      messages.push(message);
      arrivals.push(performance.now());
      if (message.kind !== "delta") {
        replies.close();
        targets.delete(jobId);
        resolveEnd();
      }
    },
    onGap: () => void relay.backfill(jobId),
  });
  targets.set(jobId, replies);
  return {
    messages,
    arrivals,
    get started() {
      return started;
    },
    get unreadable() {
      return unreadable;
    },
    /** Resolves at the terminal reply; rejects after `timeoutMs`. */
    async ended(timeoutMs = 5000): Promise<void> {
      const timeout = sleep(timeoutMs, "timeout", { ref: false });
      const winner = await Promise.race([ended.then(() => "ended"), timeout]);
      assert.equal(
        winner,
        "ended",
        `no terminal reply within ${timeoutMs} ms; got seqs ${messages.map((m) => m.seq).join(",")}`,
      );
    },
  };
}

/** Asserts replies numbered 0..n-1 without gaps or repeats: deltas then one `done`. */
function assertWholeReply(messages: readonly ReplyMessage[], expectedText: string): void {
  assert.deepEqual(
    messages.map((message) => message.seq),
    messages.map((_, index) => index),
    "sequence numbers must run from 0 without gaps or repeats",
  );
  const last = messages.at(-1);
  assert.equal(last?.kind, "done", "the last reply must be the terminal one");
  assert.deepEqual(last, { ...doneFields, seq: messages.length - 1 });
  const deltas = messages.slice(0, -1);
  assert.ok(deltas.every((message) => message.kind === "delta"));
  assert.equal(
    deltas.map((message) => (message.kind === "delta" ? message.text : "")).join(""),
    expectedText,
  );
}

/** Server-side kills the connection named `name`, as a network failure would. */
async function killConnection(admin: Redis, name: string): Promise<void> {
  const list = String(await admin.client("LIST"));
  const line = list.split("\n").find((entry) => entry.includes(` name=${name} `));
  const id = line === undefined ? undefined : /(?:^|\s)id=(\d+)/.exec(line)?.[1];
  assert.ok(id !== undefined, `connection ${name} not found in CLIENT LIST`);
  assert.equal(await admin.client("KILL", "ID", id), 1);
}

before(async () => {
  url = await testRedisUrl();
  prefix = uniquePrefix("reply");
  names = new RedisNames(prefix);
});

after(async () => {
  await Promise.all(relays.map((relay) => relay.close()));
  await Promise.all(connections.map((redis) => closeRedis(redis)));
  await deleteKeysWithPrefix(url, prefix);
});

describe("reply delivery", () => {
  it("delivers 200 pieces sent without a window in order, then done", async () => {
    const { relay } = await startRelay("order");
    const jobId = randomUUID();
    const received = collect(relay, jobId);
    const replies = await claimedReplies(connect("order-pub"), jobId, relay.channel);
    let sent = "";
    for (let i = 0; i < 200; i += 1) {
      const piece = `tok${i} `;
      sent += piece;
      replies.text(piece);
    }
    await replies.end(doneFields);
    await received.ended();
    assert.equal(received.messages.length, 201, "every piece is a delta of its own");
    assertWholeReply(received.messages, sent);
    assert.equal(received.started, 1);
  });

  it("repairs replies the relay missed from the stream (job tracked late)", async () => {
    const { relay } = await startRelay("late");
    const jobId = randomUUID();
    const replies = await claimedReplies(connect("late-pub"), jobId, relay.channel);
    const redis = connect("late-raw");
    let sent = "";
    for (let i = 0; i < 20; i += 1) {
      sent += `early${i} `;
      replies.text(`early${i} `);
    }
    // Their pub/sub copies went to nobody; the stream has them.
    await waitFor(
      async () => (await redis.xlen(names.deltaStream(jobId))) === 20,
      2000,
      "20 entries",
    );
    const received = collect(relay, jobId);
    for (let i = 0; i < 5; i += 1) {
      sent += `late${i} `;
      replies.text(`late${i} `);
    }
    await replies.end(doneFields);
    await received.ended();
    assertWholeReply(received.messages, sent);
    assert.equal(received.messages.length, 26);
  });

  it("backfills stream-only replies and drops duplicates", async () => {
    const { relay } = await startRelay("gap");
    const jobId = randomUUID();
    const received = collect(relay, jobId);
    const redis = connect("gap-raw");
    const stream = names.deltaStream(jobId);
    const delta = (seq: number) =>
      encodeReply(keyRing, jobId, { kind: "delta", seq, text: `d${seq}|` });
    const add = (seq: number, wire: string) =>
      redis.xadd(stream, RedisNames.streamEntryId(1, seq), "m", wire);
    // 0 normally; 1-4 reach the stream only (pub/sub lost them); 5 normally, published twice.
    await redis.multi().xadd(stream, "1-1", "m", delta(0)).publish(relay.channel, delta(0)).exec();
    await waitFor(() => received.messages.length === 1, 2000, "reply 0");
    for (let seq = 1; seq <= 4; seq += 1) await add(seq, delta(seq));
    await redis
      .multi()
      .xadd(stream, RedisNames.streamEntryId(1, 5), "m", delta(5))
      .publish(relay.channel, delta(5))
      .publish(relay.channel, delta(5))
      .exec();
    await waitFor(() => received.messages.length === 6, 2000, "the backfilled replies");
    // A stale duplicate of 2 on pub/sub, then the end.
    await redis.publish(relay.channel, delta(2));
    const done = encodeReply(keyRing, jobId, { ...doneFields, seq: 6 });
    await redis
      .multi()
      .xadd(stream, RedisNames.streamEntryId(1, 6), "m", done)
      .publish(relay.channel, done)
      .exec();
    await received.ended();
    assertWholeReply(received.messages, "d0|d1|d2|d3|d4|d5|");
  });

  it("ignores junk on the channel and replies of untracked jobs", async () => {
    const { relay } = await startRelay("junk");
    const jobId = randomUUID();
    const received = collect(relay, jobId);
    const redis = connect("junk-raw");
    await redis.publish(relay.channel, "not json");
    await redis.publish(relay.channel, JSON.stringify({ j: jobId, s: -1, t: "x" }));
    await redis.publish(relay.channel, JSON.stringify([1, 2]));
    const stranger = encodeReply(keyRing, randomUUID(), { kind: "delta", seq: 0, text: "no" });
    await redis.publish(relay.channel, stranger);
    const replies = await claimedReplies(connect("junk-pub"), jobId, relay.channel);
    replies.text("fine");
    await replies.end(doneFields);
    await received.ended();
    assertWholeReply(received.messages, "fine");
    assert.equal(received.unreadable, 0);
  });

  it("reports a reply sealed with another key as unreadable and delivers nothing", async () => {
    const { relay } = await startRelay("foreign");
    const jobId = randomUUID();
    const received = collect(relay, jobId);
    const foreignRing = new KeyRing([FernetKey.generate()]);
    const redis = connect("foreign-raw");
    const wire = encodeReply(foreignRing, jobId, { kind: "delta", seq: 0, text: "hidden" });
    await redis.publish(relay.channel, wire);
    await waitFor(() => received.unreadable > 0, 2000, "the unreadable report");
    assert.equal(received.unreadable, 1);
    assert.equal(received.messages.length, 0);
  });

  it("repairs what pub/sub lost while the subscriber was disconnected", async () => {
    const { relay, subscriber, subscriberName } = await startRelay("reconnect");
    const admin = connect("reconnect-admin");
    let viaPubSub = 0;
    subscriber.on("message", (channel: string) => {
      if (channel === relay.channel) viaPubSub += 1;
    });
    let readyEvents = 0;
    subscriber.on("ready", () => {
      readyEvents += 1;
    });
    const jobId = randomUUID();
    const received = collect(relay, jobId);
    const replies = await claimedReplies(connect("reconnect-pub"), jobId, relay.channel);
    let sent = "";
    let killedAt = -1;
    for (let i = 0; i < 150; i += 1) {
      const piece = `r${i} `;
      sent += piece;
      replies.text(piece);
      if (i === 40) {
        await killConnection(admin, subscriberName);
        killedAt = i;
      }
      await sleep(3);
    }
    await waitFor(() => readyEvents > 0, 3000, "the subscriber to reconnect");
    // Keep publishing after the reconnect too.
    for (let i = 150; i < 160; i += 1) {
      sent += `r${i} `;
      replies.text(`r${i} `);
      await sleep(2);
    }
    await replies.end(doneFields);
    await received.ended();
    assert.equal(killedAt, 40);
    assertWholeReply(received.messages, sent);
    assert.ok(
      viaPubSub < received.messages.length,
      `the test lost nothing on pub/sub (${viaPubSub} of ${received.messages.length}), so repaired nothing`,
    );
  });

  it("repairs a job that ended entirely while the subscriber was away", async () => {
    const { relay, subscriber, subscriberName } = await startRelay("away");
    const admin = connect("away-admin");
    let readyEvents = 0;
    subscriber.on("ready", () => {
      readyEvents += 1;
    });
    const jobId = randomUUID();
    const received = collect(relay, jobId);
    const replies = await claimedReplies(connect("away-pub"), jobId, relay.channel);
    replies.text("seen ");
    await waitFor(() => received.messages.length === 1, 2000, "the first reply");
    await killConnection(admin, subscriberName);
    await waitFor(() => subscriber.status !== "ready", 2000, "the disconnect");
    // Only the stream gets these: nothing published after the reconnect reveals a gap.
    replies.text("unseen1 ");
    replies.text("unseen2");
    await replies.end(doneFields);
    assert.equal(readyEvents, 0, "the subscriber came back too early for this test");
    assert.equal(received.messages.length, 1);
    await received.ended();
    assertWholeReply(received.messages, "seen unseen1 unseen2");
  });

  it("delivers the terminal reply published just as the subscriber comes back", async () => {
    // The relay backfills when its subscriber is ready again, while ioredis re-sends SUBSCRIBE:
    // a terminal reply sent at that moment must still arrive (nothing later would reveal a gap).
    const { relay, subscriber, subscriberName } = await startRelay("race");
    const admin = connect("race-admin");
    const pub = connect("race-pub");
    await pub.ping();
    const jobId = randomUUID();
    const received = collect(relay, jobId);
    const replies = await claimedReplies(pub, jobId, relay.channel);
    replies.text("before ");
    await waitFor(() => received.messages.length === 1, 2000, "the first reply");
    let endCalled = false;
    subscriber.once("ready", () => {
      // Runs after the relay's own "ready" listener, before ioredis resubscribes.
      endCalled = true;
      void replies.end(doneFields);
    });
    await killConnection(admin, subscriberName);
    await waitFor(() => endCalled, 3000, "the reconnect");
    await received.ended(1500);
    assertWholeReply(received.messages, "before ");
  });
});

describe("what Redis holds", () => {
  it("stores and publishes only ciphertext", async () => {
    const { relay } = await startRelay("secret");
    const spy = connect("secret-spy");
    const wires: string[] = [];
    spy.on("message", (channel: string, text: string) => {
      if (channel === relay.channel) wires.push(text);
    });
    await spy.subscribe(relay.channel);
    const marker = "PLAINTEXT-MARKER-3e8b41";
    const jobId = randomUUID();
    const received = collect(relay, jobId);
    const replies = await claimedReplies(connect("secret-pub"), jobId, relay.channel);
    replies.text(`The answer is ${marker}.`);
    replies.text(` Again: ${marker}`);
    await replies.end(doneFields);
    await received.ended();
    assertWholeReply(received.messages, `The answer is ${marker}. Again: ${marker}`);
    // The claim's `started` notice, then the three replies.
    await waitFor(() => wires.length === 4, 2000, "the spy's copies");

    const redis = connect("secret-raw");
    const entries = await redis.xrange(names.deltaStream(jobId), "-", "+");
    assert.equal(entries.length, 3);
    const stored: string[] = [];
    for (const key of await keysWithPrefix(url, prefix)) {
      const type = await redis.type(key);
      if (type === "stream") {
        for (const [id, fields] of await redis.xrange(key, "-", "+")) stored.push(id, ...fields);
      } else if (type === "string") {
        stored.push(String(await redis.get(key)));
      } else {
        stored.push(`${key}:${type}`);
      }
    }
    assert.ok(stored.length >= 6);
    for (const text of [...stored, ...wires]) {
      assert.ok(!text.includes(marker), "plaintext reached Redis");
      assert.ok(!text.includes("The answer"), "plaintext reached Redis");
    }
  });

  it("sets an expiry on the delta stream with the first reply", async () => {
    const redis = connect("ttl-raw");
    const jobId = randomUUID();
    const stream = names.deltaStream(jobId);
    const replies = await claimedReplies(connect("ttl-pub"), jobId, "unused-channel");
    assert.equal(await redis.ttl(stream), -2, "no stream before the first reply");
    replies.text("x");
    await waitFor(async () => (await redis.ttl(stream)) !== -2, 2000, "the first reply");
    const ttl = await redis.ttl(stream);
    assert.ok(ttl > 0 && ttl <= streamTtlSeconds, `ttl ${ttl} after the first reply`);
    await replies.end(doneFields);
    assert.ok((await redis.ttl(stream)) > 0, "the expiry stays after the end");
    assert.equal(await redis.xlen(stream), 2);
  });

  it("refuses the claim of a job whose owner key says it ended: nothing written", async () => {
    const redis = connect("ended-raw");
    const jobId = randomUUID();
    await redis.set(names.ownerKey(jobId), endedOwner, "PX", 60_000);
    const replies = publisher(connect("ended-pub")).forJob(jobId, "unused-channel", 1);
    assert.equal(await replies.claim(), false, "the claim is refused");
    replies.text("x");
    await replies.end(doneFields).catch(() => {});
    assert.equal(await redis.get(names.ownerKey(jobId)), endedOwner, "the mark stays");
    assert.equal(await redis.exists(names.deltaStream(jobId)), 0, "no reply stored");
  });
});
