/**
 * The pool on a real Redis Cluster (three primaries, three replicas, started here): the
 * end-to-end slice, two models whose queues live on different nodes, cancellation, the queue
 * limit held exactly under concurrent admissions, an orchestrator restart answering old job ids;
 * then the primary holding the busy model's queue is killed (SIGKILL) while jobs run. One cluster
 * and one stack serve every test of the file.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { RedisNames } from "../../shared/naming.js";
import { isFinalChunk } from "../../shared/protocol/index.js";
import { assertOneNumbering } from "../support/chunks.js";
import { tinyModelPath } from "../support/models.js";
import { TestCluster } from "../support/redis-cluster.js";
import { referenceTexts } from "../support/reference.js";
import { type JobView, TestStack, textOf } from "../support/stack.js";
import {
  answersOldJobsAfterRestart,
  cancelsMidStream,
  codeOf,
  greedy,
  holdsTheQueueLimit,
  perJobKeysWithoutExpiry,
  refusesWrongPassword,
  servesLikeTheRawModel,
  survivesPrimaryLoss,
} from "../support/topology-scenarios.js";
import { waitFor, waitForValue } from "../support/wait-for.js";

const queueLimit = 3;
const sequences = 2;

/** Whether any of these jobs has an unfinished entry in `model`'s queue (waiting or active). */
async function unfinishedEntries(
  cluster: TestCluster,
  stack: TestStack,
  model: string,
  ids: string[],
): Promise<boolean> {
  const redis = cluster.client();
  try {
    for (const id of ids) {
      const [added, finished] = await redis.hmget(
        stack.names.queueJob(model, id),
        "timestamp",
        "finishedOn",
      );
      if (added !== null && finished === null) return true;
    }
    return false;
  } finally {
    redis.disconnect();
  }
}

describe("the pool on a Redis Cluster", { timeout: 600_000 }, () => {
  let cluster: TestCluster;
  let stack: TestStack;
  let modelPath: string;
  /** A second model whose queue's slot is on another primary than tiny's. */
  let other: string;
  const names = new RedisNames("any");
  const queueKeyOf = (model: string) => `${names.bullPrefix}:${names.modelQueue(model)}:wait`;
  const statusOf = async (on: TestStack, id: string) => (await on.get(`/status/${id}`)) as JobView;
  /** How many subscribe to a job's reply channel, on the primary of its slot. */
  const shardSubscribers = async (on: TestStack, jobId: string) => {
    const channel = on.names.jobReplyChannel(jobId);
    const node = await cluster.primaryOf(channel);
    const reply = (await node.command("PUBSUB", "SHARDNUMSUB", channel)) as unknown[];
    return Number(reply[1]);
  };

  before(async () => {
    modelPath = await tinyModelPath();
    cluster = await TestCluster.start();
    const tinyNode = await cluster.primaryOf(queueKeyOf("tiny"));
    const candidates = ["other", "second", "beta", "gamma", "delta", "omega"];
    for (const candidate of candidates) {
      if ((await cluster.primaryOf(queueKeyOf(candidate))).port !== tinyNode.port) {
        other = candidate;
        break;
      }
    }
    assert.ok(other !== undefined, "a model name whose queue lives on another node");
    stack = await TestStack.start({
      models: `tiny=${modelPath}?sequences=${sequences}&queue_limit=${queueLimit},${other}=${modelPath}?sequences=1`,
      // No finished job kept for the dashboard: every per-job key must then carry an expiry.
      env: { CONTEXT_SIZE: "2048", DELTA_WINDOW_MS: "5", DASHBOARD_RETENTION: "off" },
      redisEnv: cluster.env,
      label: "cluster",
    });
  });

  after(async () => {
    await stack?.stop();
    await cluster?.close();
  });

  it("refuses a wrong REDIS_PASSWORD at start, exit 2, naming the setting", async () => {
    await refusesWrongPassword(
      cluster.env,
      modelPath,
      /REDIS_CLUSTER_NODES=127\.0\.0\.1:\d+,.*Redis refused the connection: the user name or password in REDIS_USERNAME\/REDIS_PASSWORD is wrong/,
    );
  });

  it("streams an encrypted request's text equal to raw node-llama-cpp's", async () => {
    await servesLikeTheRawModel(stack, modelPath);
  });

  it("sends a job's replies by sharded pub/sub on the job's shard, never by plain PUBLISH", async () => {
    const publishes = await cluster.commandCalls("publish");
    const shardPublishes = await cluster.commandCalls("spublish");
    const job = await stack.run(greedy("a story told shard by shard", 1500));
    // Subscribed before it was queued, on the node of its slot.
    assert.equal(await shardSubscribers(stack, job.id), 1);
    const { status, chunks } = await stack.streamAll(job.id);
    assert.equal(status, "COMPLETED");
    // Its started notice and every reply sharded; not one plain PUBLISH anywhere.
    const published = (await cluster.commandCalls("spublish")) - shardPublishes;
    assert.ok(published > chunks.length, `${published} SPUBLISH for ${chunks.length} chunks`);
    assert.equal(await cluster.commandCalls("publish"), publishes);
    await waitFor(
      async () => (await shardSubscribers(stack, job.id)) === 0,
      5000,
      "the channel to be left",
      50,
    );
  });

  it("an orchestrator killed with jobs in flight: the next adopts them by their shard channels", async () => {
    // A stack of its own: one sequence (a job waits behind the running one), and a short registry
    // TTL (the dead orchestrator's jobs are adopted within about 1.5 s).
    const own = await TestStack.start({
      models: `tiny=${modelPath}?sequences=1`,
      env: {
        CONTEXT_SIZE: "16384",
        MAX_TOKENS_LIMIT: "12000",
        REGISTRY_TTL_MS: "1500",
        DELTA_WINDOW_MS: "5",
      },
      redisEnv: cluster.env,
      label: "cluster-adopt",
    });
    try {
      const long = await own.run(greedy("the longest road", 12_000));
      await own.explain(
        waitFor(
          async () => (await statusOf(own, long.id)).status === "IN_PROGRESS",
          30_000,
          "the long job to run",
          50,
        ),
      );
      const waiting = await own.run(greedy("the sun", 24));
      await own.restartOrchestrator("SIGKILL");
      await own.explain(
        waitFor(
          () => own.logs.filter((line) => line.includes("job adopted")).length >= 2,
          30_000,
          "both jobs adopted",
        ),
      );
      // Still queued: all its replies come after the adoption, on its own shard channel, which
      // the new orchestrator subscribed (the old one's subscriptions died with its connections).
      assert.equal((await statusOf(own, waiting.id)).status, "IN_QUEUE");
      assert.equal(await shardSubscribers(own, waiting.id), 1);
      await own.post(`/cancel/${long.id}`, {});
      const { status, chunks } = await own.explain(own.streamAll(waiting.id));
      assert.equal(status, "COMPLETED");
      assertOneNumbering(chunks);
      assert.ok(
        chunks.some((chunk) => !isFinalChunk(chunk)),
        "its text, after the adoption",
      );
    } finally {
      await own.stop();
    }
  });

  it("serves two models whose queues live on different nodes", async () => {
    const [tinyNode, otherNode] = await Promise.all([
      cluster.primaryOf(queueKeyOf("tiny")),
      cluster.primaryOf(queueKeyOf(other)),
    ]);
    assert.notEqual(tinyNode.port, otherNode.port);
    await servesLikeTheRawModel(stack, modelPath, other);
    // Each queue's keys are on its own node: its job counter is there, not on the other's.
    const idKey = (model: string) => `${stack.prefix}:${names.modelQueue(model)}:id`;
    const redis = cluster.client();
    try {
      assert.ok(Number(await redis.get(idKey(other))) >= 1);
      assert.notEqual(await cluster.slotOf(idKey("tiny")), await cluster.slotOf(idKey(other)));
    } finally {
      redis.disconnect();
    }
  });

  it("cancels a running job", async () => {
    await cancelsMidStream(stack);
  });

  it("holds the queue limit exactly under concurrent admissions", async () => {
    await holdsTheQueueLimit(stack, { limit: queueLimit, sequences, requests: 10 });
  });

  it("answers a finished job's id after an orchestrator restart", async () => {
    await answersOldJobsAfterRestart(stack);
  });

  it("continues a job on another gpu-worker when its own is lost: the same text, 0..n once", async () => {
    // A second gpu-worker; the first, which takes the job, is killed at its first text. The next
    // attempt replies on the job's own shard channel, as the first did.
    const [expected] = await referenceTexts(modelPath, [{ prompt: "the dog", maxTokens: 1500 }]);
    await stack.addGpuWorker();
    const redis = cluster.client();
    try {
      const job = await stack.run(greedy("the dog", 1500));
      let killing: Promise<void> | undefined;
      const streamed = stack.streamAll(job.id, (chunk) => {
        if (killing !== undefined || isFinalChunk(chunk)) return;
        killing = stack.gpuWorkerOwning(redis, job.id).then(
          (child) =>
            new Promise<void>((resolve) => {
              child.once("exit", () => resolve());
              child.kill("SIGKILL");
            }),
        );
      });
      const { status, chunks } = await stack.explain(streamed);
      await killing;
      assert.equal(status, "COMPLETED");
      assert.deepEqual(
        chunks.map((chunk) => chunk.seq),
        chunks.map((_, index) => index),
        "numbered 0..n once across the cut",
      );
      assert.equal(textOf(chunks), expected, "node-llama-cpp's uninterrupted greedy text");
      const final = chunks.at(-1);
      assert.ok(final !== undefined && isFinalChunk(final));
      assert.equal(final.attempts, 2);
    } finally {
      redis.disconnect();
    }
  });

  it("survives the loss of the primary holding the busy model's queue", async () => {
    // Nothing left running from the tests before.
    await waitFor(
      async () => (await stack.runsync(greedy("ready", 2))).status === "COMPLETED",
      30_000,
      "the stack to serve",
      200,
    );
    const victim = await cluster.primaryOf(queueKeyOf("tiny"));
    const result = await survivesPrimaryLoss(stack, {
      target: cluster.target,
      kill: () => victim.kill("SIGKILL"),
      promoted: async () => {
        // The victim's replica serves its slots, and every slot is served.
        await waitFor(
          async () => (await cluster.primaryOf(queueKeyOf("tiny"))).port !== victim.port,
          30_000,
          "a replica to take over the killed primary's slots",
          50,
        );
        await cluster.waitUntilHealthy(30_000);
      },
    });
    console.log(`cluster failover: ${JSON.stringify(result)}`);
  });

  it("keeps ended jobs ended when the promoted replica lacked their last writes", async () => {
    // The primary of the other model's queue is cut off from its replica; two jobs end while it
    // is (one cancelled running, one cancelled waiting: their entries' removal reaches only the
    // primary); then it is killed and the stale replica promoted. The entries come back: they are
    // removed again, and the waiting one is not run again for nobody.
    const statusOf = async (id: string) => (await stack.get(`/status/${id}`)) as JobView;
    const running = await stack.run(greedy("a road that ends early", 1900, other));
    await waitFor(
      async () => (await statusOf(running.id)).status === "IN_PROGRESS",
      30_000,
      "the job to run",
      50,
    );
    const waiting = await stack.run(greedy("a road never taken", 1900, other));
    const primary = await cluster.primaryOf(queueKeyOf(other));
    const resume = await cluster.cutReplication(primary);
    try {
      for (const job of [waiting, running]) await stack.post(`/cancel/${job.id}`, {});
      for (const job of [running, waiting]) {
        await waitFor(
          async () => (await statusOf(job.id)).status === "CANCELLED",
          30_000,
          "the cancel",
          50,
        );
      }
      // The end reached the primary: the entries are gone there (the replica still has them).
      await waitFor(
        async () => !(await unfinishedEntries(cluster, stack, other, [running.id, waiting.id])),
        30_000,
        "the entries removed on the primary",
        50,
      );
      await primary.kill("SIGKILL");
    } finally {
      resume();
    }
    const killedAt = stack.logs.length;
    await waitFor(
      async () => (await cluster.primaryOf(queueKeyOf(other))).port !== primary.port,
      30_000,
      "the stale replica to take over",
      50,
    );
    await cluster.waitUntilHealthy(30_000);
    await stack.explain(
      waitFor(
        async () =>
          stack.logs.slice(killedAt).some((line) => line.includes("queue entries of ended jobs")) &&
          !(await unfinishedEntries(cluster, stack, other, [running.id, waiting.id])),
        30_000,
        "the entries that came back removed again",
        100,
      ),
    );
    assert.equal((await statusOf(running.id)).status, "CANCELLED");
    assert.equal((await statusOf(waiting.id)).status, "CANCELLED");
    const finished = stack.logs
      .slice(killedAt)
      .filter((line) => line.includes("job finished") && line.includes(waiting.id));
    assert.deepEqual(finished, [], "the waiting job was not run again");
    assert.equal((await stack.runsync(greedy("and after", 4, other))).status, "COMPLETED");
    assert.deepEqual(await perJobKeysWithoutExpiry(cluster.target, stack.prefix), []);
  });

  it("ends coded the jobs whose writes the cluster lost: a running one, and a waiting one once a node left", async () => {
    // What a promoted replica that lacked the last writes looks like, one loss at a time.
    const ended = (id: string, what: string) =>
      stack.explain(
        waitForValue(
          async () => {
            const view = await statusOf(stack, id);
            return view.status === "IN_PROGRESS" || view.status === "IN_QUEUE" ? undefined : view;
          },
          20_000,
          what,
          100,
        ),
      );
    const busy = await Promise.all(
      Array.from({ length: sequences }, (_, index) =>
        stack.run(greedy(`the longest road ${index}`, 1900)),
      ),
    );
    await waitFor(
      async () =>
        (await Promise.all(busy.map((job) => statusOf(stack, job.id)))).every(
          (view) => view.status === "IN_PROGRESS",
        ),
      30_000,
      "every sequence to be busy",
      50,
    );
    const waiting = await stack.run(greedy("left waiting", 4));
    assert.equal((await statusOf(stack, waiting.id)).status, "IN_QUEUE");
    const [running] = busy;
    assert.ok(running !== undefined);
    const redis = cluster.client();
    try {
      // A waiting job lost from its queue (first, while every sequence is busy): nobody will ever
      // take it. A node leaving the cluster makes the orchestrator check its jobs: JOB_LOST.
      const queue = `${stack.prefix}:${stack.names.modelQueue("tiny")}`;
      assert.equal(await redis.lrem(`${queue}:wait`, 0, waiting.id), 1);
      assert.equal(await redis.del(`${queue}:${waiting.id}`), 1);
      // A running job's owner key lost: its gpu-worker's next reply is refused, and the job either
      // goes on from its delivered text as a next attempt (a continuation) or ends coded.
      assert.equal(await redis.del(stack.names.ownerKey(running.id)), 1);
      assert.equal(
        (await statusOf(stack, waiting.id)).status,
        "IN_QUEUE",
        "nothing noticed it yet",
      );
    } finally {
      redis.disconnect();
    }
    await (await cluster.replica()).kill("SIGKILL");
    const gone = await ended(waiting.id, "the waiting job to end");
    assert.equal(gone.status, "FAILED");
    assert.equal(codeOf(gone), "JOB_LOST");
    const lost = await ended(running.id, "the running job to end");
    if (lost.status === "COMPLETED") {
      const final = lost.output?.find(isFinalChunk);
      assert.ok((final?.attempts ?? 1) > 1, "completed by a next attempt");
    } else {
      assert.equal(lost.status, "FAILED");
      assert.match(codeOf(lost) ?? "", /^(JOB_LOST|WORKER_LOST)$/);
    }
    for (const job of busy) await stack.post(`/cancel/${job.id}`, {});
    assert.equal((await stack.runsync(greedy("and after", 4))).status, "COMPLETED");
  });
});
