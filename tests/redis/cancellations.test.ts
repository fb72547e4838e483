/**
 * Cancellation on a real Redis: the orchestrator publishes `{"type":"cancel","jobId":...}` on the
 * control channel (and sets the job's cancel key first); a gpu-worker's Cancellations aborts the
 * signal of the job if it runs there.
 */
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { after, before, describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import type { Redis } from "ioredis";
import { Cancellations } from "../../gpu-worker/queue/cancellations.js";
import { createLogger } from "../../shared/log.js";
import { RedisNames } from "../../shared/naming.js";
import { closeRedis, createRedis } from "../../shared/redis/index.js";
import { deleteKeysWithPrefix, testRedisUrl, uniquePrefix } from "../support/redis.js";
import { holdsFor } from "../support/wait-for.js";

const log = createLogger("test", { level: "error" });

let url: string;
let prefix: string;
let names: RedisNames;
let publisher: Redis;
const connections: Redis[] = [];
const started: Cancellations[] = [];

function connect(label: string): Redis {
  const redis = createRedis(url, `${prefix}-${label}`, log);
  connections.push(redis);
  return redis;
}

async function startCancellations(label: string): Promise<Cancellations> {
  const cancellations = new Cancellations({
    redis: connect(`${label}-cmd`),
    subscriber: connect(`${label}-sub`),
    names,
    log,
  });
  started.push(cancellations);
  await cancellations.start();
  return cancellations;
}

function cancelMessage(jobId: string): string {
  return JSON.stringify({ type: "cancel", jobId });
}

/** Resolves when `signal` aborts; fails after `timeoutMs`. */
async function aborted(signal: AbortSignal, timeoutMs = 2000): Promise<void> {
  if (signal.aborted) return;
  const abort = new Promise<string>((resolve) =>
    signal.addEventListener("abort", () => resolve("aborted"), { once: true }),
  );
  const winner = await Promise.race([abort, sleep(timeoutMs, "timeout", { ref: false })]);
  assert.equal(winner, "aborted", `the signal was not aborted within ${timeoutMs} ms`);
}

before(async () => {
  url = await testRedisUrl();
  prefix = uniquePrefix("cancel");
  names = new RedisNames(prefix);
  publisher = connect("publisher");
});

after(async () => {
  await Promise.all(started.map((cancellations) => cancellations.close()));
  await Promise.all(connections.map((redis) => closeRedis(redis)));
  await deleteKeysWithPrefix(url, prefix);
});

/** Registers a job and waits until its cancel key was checked. */
async function registered(cancellations: Cancellations, jobId: string): Promise<AbortSignal> {
  const controller = new AbortController();
  const { checked } = cancellations.register(jobId, controller);
  await checked;
  return controller.signal;
}

describe("Cancellations", () => {
  it("aborts a registered job when its cancel is published, and only that job", async () => {
    const cancellations = await startCancellations("publish");
    const target = randomUUID();
    const bystander = randomUUID();
    const signal = await registered(cancellations, target);
    const other = await registered(cancellations, bystander);
    assert.equal(signal.aborted, false);
    const receivers = await publisher.publish(names.controlChannel, cancelMessage(target));
    assert.ok(receivers >= 1, "nobody listens on the control channel");
    await aborted(signal);
    assert.equal(other.aborted, false);
  });

  it("returns an already aborted signal when the cancel key was set before register", async () => {
    const cancellations = await startCancellations("key");
    const jobId = randomUUID();
    await publisher.set(names.cancelKey(jobId), "1", "EX", 60);
    const signal = await registered(cancellations, jobId);
    assert.equal(signal.aborted, true);
    const unrelated = await registered(cancellations, randomUUID());
    assert.equal(unrelated.aborted, false, "another job's cancel key must not abort this one");
  });

  it("aborts a running job whose cancel went by while its subscription was down", async () => {
    const subscriber = connect("down-sub");
    // Its id, asked before it subscribes (a subscribed connection takes no CLIENT command).
    const subscriberId = Number(await subscriber.client("ID"));
    const cancellations = new Cancellations({
      redis: connect("down-cmd"),
      subscriber,
      names,
      log,
    });
    started.push(cancellations);
    await cancellations.start();
    const target = randomUUID();
    const bystander = randomUUID();
    const signal = await registered(cancellations, target);
    const other = await registered(cancellations, bystander);
    // The cancel mark is set and its message is published to nobody (as while the subscription
    // moved), then the subscription's connection drops and comes back.
    await publisher.set(names.cancelKey(target), "1", "EX", 60);
    await publisher.call("CLIENT", "KILL", "ID", String(subscriberId));
    await aborted(signal, 5000);
    assert.equal(other.aborted, false);
  });

  it("ignores cancels of jobs it does not run", async () => {
    const cancellations = await startCancellations("unknown");
    const running = randomUUID();
    const signal = await registered(cancellations, running);
    assert.equal(cancellations.cancel(randomUUID()), false);
    await publisher.publish(names.controlChannel, cancelMessage(randomUUID()));
    // Pub/sub keeps order: once this later cancel lands, the unknown one has been handled.
    const barrier = randomUUID();
    const barrierSignal = await registered(cancellations, barrier);
    await publisher.publish(names.controlChannel, cancelMessage(barrier));
    await aborted(barrierSignal);
    assert.equal(signal.aborted, false);
  });

  it("ignores malformed control messages without throwing", async () => {
    const cancellations = await startCancellations("malformed");
    const spared = randomUUID();
    const sparedSignal = await registered(cancellations, spared);
    const malformed = [
      "not json",
      "",
      "null",
      "[]",
      "42",
      `"${spared}"`,
      JSON.stringify({ type: "cancel" }),
      JSON.stringify({ type: "cancel", jobId: "" }),
      JSON.stringify({ type: "cancel", jobId: 7 }),
      JSON.stringify({ type: "pause", jobId: spared }),
      JSON.stringify({ jobId: spared }),
      JSON.stringify({ type: "cancel", jobId: spared, extra: true }),
      `{"type":"cancel","jobId":"${spared}"`,
    ];
    for (const text of malformed) await publisher.publish(names.controlChannel, text);
    const barrier = randomUUID();
    const barrierSignal = await registered(cancellations, barrier);
    await publisher.publish(names.controlChannel, cancelMessage(barrier));
    await aborted(barrierSignal);
    assert.equal(sparedSignal.aborted, false, "a malformed message cancelled a job");
  });

  it("forgets unregistered jobs", async () => {
    const cancellations = await startCancellations("unregister");
    const jobId = randomUUID();
    const signal = await registered(cancellations, jobId);
    cancellations.unregister(jobId);
    assert.equal(cancellations.cancel(jobId), false);
    assert.equal(signal.aborted, false);
  });

  it("cancelAll aborts every running job", async () => {
    const cancellations = await startCancellations("all");
    const signals = await Promise.all([1, 2, 3].map(() => registered(cancellations, randomUUID())));
    cancellations.cancelAll();
    assert.deepEqual(
      signals.map((signal) => signal.aborted),
      [true, true, true],
    );
  });

  it("stops listening once closed, and close is idempotent", async () => {
    const cancellations = await startCancellations("close");
    const jobId = randomUUID();
    const signal = await registered(cancellations, jobId);
    const subscribers = async () => {
      const [, count] = (await publisher.pubsub("NUMSUB", names.controlChannel)) as [
        string,
        number,
      ];
      return Number(count);
    };
    const subscribedBefore = await subscribers();
    const closing = cancellations.close();
    assert.equal(cancellations.close(), closing);
    await closing;
    assert.equal(await subscribers(), subscribedBefore - 1, "its subscription ended");
    // A second listener proves the message went out while the closed one stayed deaf.
    const listener = await startCancellations("close-witness");
    const witness = await registered(listener, jobId);
    await publisher.publish(names.controlChannel, cancelMessage(jobId));
    await aborted(witness);
    await holdsFor(() => !signal.aborted, 20, "the closed listener's job is not aborted");
    assert.equal(signal.aborted, false);
  });
});
