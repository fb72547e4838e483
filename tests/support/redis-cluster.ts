/**
 * A real Redis Cluster for tests: three primaries, three replicas (`--cluster-enabled yes`,
 * `redis-cli --cluster create --cluster-replicas 1`), memory only, on free loopback ports, with a
 * one-second node timeout so a killed primary's replica takes over within seconds. With `tls`,
 * every node is TLS-only (`port 0`, `tls-port`), and so is the cluster bus (`tls-cluster yes`).
 * Start one per test file and share it between its tests (each test isolates itself by prefix).
 */
import { Redis } from "ioredis";
import { type ClusterTarget, freePort } from "../../shared/redis/index.js";
import {
  cli,
  type NodeAccess,
  removeDir,
  type ServerProcess,
  startServer,
  topologyDir,
} from "./redis-processes.js";
import { makeTestCertificate, tlsClientOptions } from "./test-certificate.js";
import { waitFor } from "./wait-for.js";

/** The cluster's node timeout: a primary unreachable this long is failed over. */
const clusterNodeTimeoutMs = 1000;
/** Every node requires it (`requirepass`, `masterauth`): the pool is given `REDIS_PASSWORD`. */
const password = "cluster-test-password";

export class TestCluster {
  private constructor(
    readonly nodes: ServerProcess[],
    readonly dir: string,
    readonly access: NodeAccess,
  ) {}

  /**
   * `replicas`: per primary (default 1; 0 for a benchmark's comparison). `tls`: TLS-only nodes,
   * with a certificate made here (throws when openssl cannot make one).
   */
  static async start(options: { replicas?: number; tls?: boolean } = {}): Promise<TestCluster> {
    const replicas = options.replicas ?? 1;
    const dir = await topologyDir(options.tls ? "cluster-tls" : "cluster");
    const tls = options.tls ? makeTestCertificate(dir) : undefined;
    if (options.tls && tls === undefined) {
      await removeDir(dir);
      throw new Error("openssl could not make a certificate for the TLS cluster");
    }
    const access = { password, tls };
    const nodes = await Promise.all(
      Array.from({ length: 3 * (1 + replicas) }, () =>
        startServer(
          dir,
          async (port) => [
            `requirepass ${password}`,
            `masterauth ${password}`,
            "cluster-enabled yes",
            `cluster-config-file nodes-${port}.conf`,
            // A bus port of its own: the default, port + 10000, is past 65535 for a free port
            // above 55535, which the kernel hands out (redis-server then exits at start).
            `cluster-port ${await freePort()}`,
            `cluster-node-timeout ${clusterNodeTimeoutMs}`,
            // A replica may always take over, however long since it heard its primary.
            "cluster-replica-validity-factor 0",
            ...(tls === undefined ? [] : ["tls-cluster yes"]),
          ],
          access,
        ),
      ),
    );
    const cluster = new TestCluster(nodes, dir, access);
    try {
      await cli(access, [
        "--cluster",
        "create",
        ...nodes.map((node) => node.address),
        "--cluster-replicas",
        String(replicas),
        "--cluster-yes",
      ]);
      await cluster.waitUntilHealthy();
    } catch (error) {
      await cluster.close();
      throw error;
    }
    return cluster;
  }

  /**
   * What the pool's parts are given: `REDIS_CLUSTER_NODES`, three seeds; `REDIS_URL` emptied, as
   * the test runner sets it for every test (and it excludes `REDIS_CLUSTER_NODES`).
   */
  get env(): Record<string, string> {
    const { tls } = this.access;
    return {
      REDIS_URL: "",
      REDIS_CLUSTER_NODES: this.nodes
        .slice(0, 3)
        .map((node) => node.address)
        .join(","),
      REDIS_PASSWORD: password,
      ...(tls === undefined ? {} : { REDIS_TLS: "true", NODE_EXTRA_CA_CERTS: tls.caFile }),
    };
  }

  /**
   * The pool's view of the cluster. With TLS, a process must trust the test's CA to use it
   * (`NODE_EXTRA_CA_CERTS`, as in {@link env}): the test's own process does not.
   */
  get target(): ClusterTarget {
    return {
      kind: "cluster",
      nodes: this.nodes.slice(0, 3).map((node) => ({ host: "127.0.0.1", port: node.port })),
      password,
      tls: this.access.tls !== undefined,
    };
  }

  /** A cluster client of the test's own (commands wait out a failover). */
  client(): Redis {
    const { tls } = this.access;
    return new Redis.Cluster(
      this.target.nodes.map(({ host, port }) => ({ host, port })),
      {
        redisOptions: {
          maxRetriesPerRequest: null,
          password,
          tls: tls === undefined ? undefined : tlsClientOptions(tls),
        },
        retryDelayOnFailover: 200,
      },
    ) as unknown as Redis;
  }

  /** Waits until every live node says the cluster is ok and every slot is served. */
  async waitUntilHealthy(timeoutMs = 30_000): Promise<void> {
    await waitFor(
      async () => {
        for (const node of this.nodes.filter((each) => each.running)) {
          const info = String(await node.command("CLUSTER", "INFO").catch(() => ""));
          if (!/cluster_state:ok/.test(info) || !/cluster_slots_ok:16384/.test(info)) return false;
        }
        return true;
      },
      timeoutMs,
      "the cluster to be ok",
      100,
    );
  }

  /** The running node that serves `key`'s slot as primary. */
  async primaryOf(key: string): Promise<ServerProcess> {
    for (const node of this.nodes.filter((each) => each.running)) {
      const role = String(await node.command("ROLE").catch(() => [""]));
      if (!role.startsWith("master")) continue;
      const slot = Number(await node.command("CLUSTER", "KEYSLOT", key));
      const slots = (await node.command("CLUSTER", "SLOTS")) as [
        number,
        number,
        [string, number],
      ][];
      const owner = slots.find(([from, to]) => slot >= from && slot <= to);
      const port = owner?.[2]?.[1];
      const found = this.nodes.find((each) => each.port === port);
      if (found !== undefined) return found;
    }
    throw new Error(`no primary serves the slot of ${key}`);
  }

  /** A running replica. */
  async replica(): Promise<ServerProcess> {
    for (const node of this.nodes.filter((each) => each.running)) {
      const role = String(await node.command("ROLE").catch(() => [""]));
      if (role.startsWith("slave")) return node;
    }
    throw new Error("no replica runs");
  }

  /** The running replica of `primary`. */
  async replicaOf(primary: ServerProcess): Promise<ServerProcess> {
    for (const node of this.nodes.filter((each) => each.running)) {
      const role = (await node.command("ROLE").catch(() => [])) as unknown[];
      if (role[0] === "slave" && Number(role[2]) === primary.port) return node;
    }
    throw new Error(`no replica of the node on port ${primary.port} runs`);
  }

  /**
   * Cuts `primary` off from its replica, which is stopped (SIGSTOP) and its link closed: from now
   * on the replica lacks every write the primary takes. Returns what resumes the replica.
   */
  async cutReplication(primary: ServerProcess): Promise<() => void> {
    const replica = await this.replicaOf(primary);
    replica.signal("SIGSTOP");
    await primary.command("CLIENT", "KILL", "TYPE", "replica");
    return () => replica.signal("SIGCONT");
  }

  /**
   * How often the running nodes ran `name`, summed (`INFO commandstats`, calls from scripts
   * included).
   */
  async commandCalls(name: string): Promise<number> {
    let calls = 0;
    for (const each of this.nodes.filter((node) => node.running)) {
      const info = String(await each.command("INFO", "commandstats"));
      calls += Number(new RegExp(`cmdstat_${name}:calls=(\\d+)`).exec(info)?.[1] ?? 0);
    }
    return calls;
  }

  /** The cluster slot of a key. */
  async slotOf(key: string): Promise<number> {
    const node = this.nodes.find((each) => each.running);
    if (node === undefined) throw new Error("no node runs");
    return Number(await node.command("CLUSTER", "KEYSLOT", key));
  }

  async close(): Promise<void> {
    await Promise.all(this.nodes.map((node) => node.kill()));
    await removeDir(this.dir);
  }
}
