/**
 * `REDIS_TLS` on a Redis Cluster (three primaries, three replicas) and on a Sentinel-managed
 * primary (a primary, a replica, three Sentinels), each started here TLS-only: every server
 * listens on a TLS port and on no plain port (`port 0`), with a certificate made at test time that
 * the pool trusts through `NODE_EXTRA_CA_CERTS`. On one stack per topology: an encrypted request
 * streams raw node-llama-cpp's text, and both parts' connections (and the Sentinels') are the
 * servers' TLS ports — the only ports there are. An orchestrator that does not trust the CA stops
 * at once (exit 2) naming `NODE_EXTRA_CA_CERTS`; one without `REDIS_TLS` waits its
 * `REDIS_CONNECT_TIMEOUT_MS` and exits 1 naming `REDIS_TLS`.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { tinyModelPath } from "../support/models.js";
import { TestCluster } from "../support/redis-cluster.js";
import type { ServerProcess } from "../support/redis-processes.js";
import { TestSentinels } from "../support/redis-sentinel.js";
import { TestStack } from "../support/stack.js";
import { orchestratorStart, servesLikeTheRawModel } from "../support/topology-scenarios.js";
import { waitFor } from "../support/wait-for.js";

/** The server listens on its TLS port only: its plain `port` is 0. */
async function assertTlsOnly(server: ServerProcess): Promise<void> {
  const [, port] = (await server.command("CONFIG", "GET", "port")) as [string, string];
  assert.equal(port, "0", `${server.address} has no plain port`);
}

/** The connections of the parts named `names` that `server` serves, all on its (TLS) port. */
async function poolConnections(server: ServerProcess, names: RegExp): Promise<string[]> {
  const lines = String(await server.command("CLIENT", "LIST")).split("\n");
  const pool = lines.filter((line) => names.test(line));
  for (const line of pool) assert.match(line, new RegExp(` laddr=127\\.0\\.0\\.1:${server.port} `));
  return pool;
}

const parts = / name=(orchestrator|gpu-worker)/;

/** Without the test's CA, the orchestrator stops at once: exit 2, naming what to set. */
async function refusesUntrustedCertificate(
  redisEnv: Record<string, string>,
  modelPath: string,
): Promise<void> {
  const { NODE_EXTRA_CA_CERTS: _trusted, ...untrusting } = redisEnv;
  const ran = await orchestratorStart(untrusting, modelPath, 60_000);
  assert.equal(ran.code, 2, ran.output);
  assert.match(ran.output, /TLS certificate is not accepted \(self[- ]signed certificate\)/);
  assert.match(ran.output, /NODE_EXTRA_CA_CERTS/);
}

describe("REDIS_TLS on a Redis Cluster", { timeout: 300_000 }, () => {
  let cluster: TestCluster;
  let stack: TestStack;
  let modelPath: string;

  before(async () => {
    modelPath = await tinyModelPath();
    cluster = await TestCluster.start({ tls: true });
    stack = await TestStack.start({
      models: `tiny=${modelPath}`,
      env: { CONTEXT_SIZE: "2048" },
      redisEnv: cluster.env,
      label: "cluster-tls",
    });
  });

  after(async () => {
    await stack?.stop();
    await cluster?.close();
  });

  it("streams an encrypted request's text equal to raw node-llama-cpp's", async () => {
    await servesLikeTheRawModel(stack, modelPath);
  });

  it("connects to every primary over TLS, the nodes' only port", async () => {
    const primaries: ServerProcess[] = [];
    for (const node of cluster.nodes) {
      await assertTlsOnly(node);
      const role = String(await node.command("ROLE"));
      if (role.startsWith("master")) primaries.push(node);
    }
    assert.equal(primaries.length, 3);
    // ioredis opens a part's connection to a node at its first command there: a job's keys fall
    // on a shard by its id, so short jobs run until each part has talked to every primary.
    const hasBoth = (pool: string[]) =>
      pool.some((line) => / name=orchestrator/.test(line)) &&
      pool.some((line) => / name=gpu-worker/.test(line));
    await waitFor(
      async () => {
        const pools = await Promise.all(primaries.map((node) => poolConnections(node, parts)));
        if (pools.every(hasBoth)) return true;
        await stack.runsync({ prompt: "the", sampling_params: { max_tokens: 2 } });
        return false;
      },
      60_000,
      "both parts connected to every primary",
      0,
    ).catch(() => {});
    for (const node of primaries) {
      const pool = await poolConnections(node, parts);
      assert.ok(
        pool.some((line) => / name=orchestrator/.test(line)),
        `orchestrator on ${node.address}`,
      );
      assert.ok(
        pool.some((line) => / name=gpu-worker/.test(line)),
        `gpu-worker on ${node.address}`,
      );
    }
  });

  it("an orchestrator that does not trust the CA exits 2 at once, naming NODE_EXTRA_CA_CERTS", async () => {
    await refusesUntrustedCertificate(cluster.env, modelPath);
  });

  it("an orchestrator without REDIS_TLS exits 1 after REDIS_CONNECT_TIMEOUT_MS, naming REDIS_TLS", async () => {
    const ran = await orchestratorStart({ ...cluster.env, REDIS_TLS: "false" }, modelPath, 1500);
    assert.equal(ran.code, 1, ran.output);
    assert.match(ran.output, /could not reach Redis at REDIS_CLUSTER_NODES=.* REDIS_TLS \(TLS\)/);
  });
});

describe("REDIS_TLS on a Sentinel-managed Redis", { timeout: 300_000 }, () => {
  let sentinels: TestSentinels;
  let stack: TestStack;
  let modelPath: string;

  before(async () => {
    modelPath = await tinyModelPath();
    sentinels = await TestSentinels.start({ tls: true });
    stack = await TestStack.start({
      models: `tiny=${modelPath}`,
      env: { CONTEXT_SIZE: "2048" },
      redisEnv: sentinels.env,
      label: "sentinel-tls",
    });
  });

  after(async () => {
    await stack?.stop();
    await sentinels?.close();
  });

  it("streams an encrypted request's text equal to raw node-llama-cpp's", async () => {
    await servesLikeTheRawModel(stack, modelPath);
  });

  it("connects to the primary and to the Sentinels over TLS, their only ports", async () => {
    const primary = await sentinels.primary();
    for (const node of sentinels.data) await assertTlsOnly(node);
    const pool = await poolConnections(primary, parts);
    assert.ok(
      pool.some((line) => / name=orchestrator/.test(line)),
      "orchestrator on the primary",
    );
    assert.ok(
      pool.some((line) => / name=gpu-worker/.test(line)),
      "gpu-worker on the primary",
    );
    // Each connection keeps a subscription on a Sentinel for +switch-master (failoverDetector);
    // the Sentinels' own links to each other subscribe to nothing.
    let subscribers = 0;
    for (const sentinel of sentinels.sentinels) {
      subscribers += (await poolConnections(sentinel, / sub=[1-9]/)).length;
    }
    assert.ok(subscribers > 0, "the pool's subscriptions on the Sentinels");
  });

  it("an orchestrator that does not trust the CA exits 2 at once, naming NODE_EXTRA_CA_CERTS", async () => {
    await refusesUntrustedCertificate(sentinels.env, modelPath);
  });
});
