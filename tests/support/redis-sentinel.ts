/**
 * A real Sentinel-managed Redis for tests: a primary, one replica and three Sentinels (quorum 2),
 * memory only, on free loopback ports, with a one-second down-after so a killed primary's replica
 * is promoted within seconds. With `tls`, every server is TLS-only (`port 0`, `tls-port`): the
 * replica's link to its primary, the Sentinels' links to the data nodes and to each other too.
 * Start one per test file and share it between its tests.
 */
import type { SentinelTarget } from "../../shared/redis/index.js";
import { removeDir, type ServerProcess, startServer, topologyDir } from "./redis-processes.js";
import { makeTestCertificate, type TlsFiles } from "./test-certificate.js";
import { waitFor } from "./wait-for.js";

const masterName = "pool-primary";
/** A primary that does not answer this long is down for a Sentinel. */
const sentinelDownAfterMs = 1000;
/** The data nodes' password (`REDIS_PASSWORD`), and the Sentinels' own (`REDIS_SENTINEL_PASSWORD`). */
const password = "data-test-password";
const sentinelPassword = "sentinel-test-password";

export class TestSentinels {
  private constructor(
    readonly data: ServerProcess[],
    readonly sentinels: ServerProcess[],
    readonly dir: string,
    readonly tls: TlsFiles | undefined,
  ) {}

  /** `tls`: TLS-only servers, with a certificate made here (throws when openssl cannot). */
  static async start(options: { tls?: boolean } = {}): Promise<TestSentinels> {
    const dir = await topologyDir(options.tls ? "sentinel-tls" : "sentinel");
    const tls = options.tls ? makeTestCertificate(dir) : undefined;
    if (options.tls && tls === undefined) {
      await removeDir(dir);
      throw new Error("openssl could not make a certificate for the TLS Sentinels");
    }
    const auth = [`requirepass ${password}`, `masterauth ${password}`];
    const primary = await startServer(dir, () => auth, { password, tls });
    const replica = await startServer(dir, () => [...auth, `replicaof 127.0.0.1 ${primary.port}`], {
      password,
      tls,
    });
    const sentinels = await Promise.all(
      [0, 1, 2].map(() =>
        startServer(
          dir,
          () => [
            `sentinel monitor ${masterName} 127.0.0.1 ${primary.port} 2`,
            `sentinel down-after-milliseconds ${masterName} ${sentinelDownAfterMs}`,
            `sentinel failover-timeout ${masterName} 5000`,
            `sentinel parallel-syncs ${masterName} 1`,
            `sentinel auth-pass ${masterName} ${password}`,
            `requirepass ${sentinelPassword}`,
            // The Sentinels talk to each other with the password they require.
            `sentinel sentinel-pass ${sentinelPassword}`,
          ],
          { sentinel: true, password: sentinelPassword, tls },
        ),
      ),
    );
    const set = new TestSentinels([primary, replica], sentinels, dir, tls);
    try {
      // A failover needs the Sentinels to know the replica and each other.
      await waitFor(
        async () => {
          for (const sentinel of sentinels) {
            const replicas = (await sentinel.command(
              "SENTINEL",
              "REPLICAS",
              masterName,
            )) as unknown[];
            const others = (await sentinel.command(
              "SENTINEL",
              "SENTINELS",
              masterName,
            )) as unknown[];
            if (replicas.length < 1 || others.length < 2) return false;
          }
          return true;
        },
        30_000,
        "the Sentinels to know the replica and each other",
        100,
      );
    } catch (error) {
      await set.close();
      throw error;
    }
    return set;
  }

  /**
   * What the pool's parts are given; `REDIS_URL` emptied, as the test runner sets it for every
   * test (and it excludes `REDIS_SENTINELS`).
   */
  get env(): Record<string, string> {
    return {
      REDIS_URL: "",
      REDIS_SENTINELS: this.sentinels.map((sentinel) => sentinel.address).join(","),
      REDIS_SENTINEL_NAME: masterName,
      REDIS_SENTINEL_PASSWORD: sentinelPassword,
      REDIS_PASSWORD: password,
      ...(this.tls === undefined
        ? {}
        : { REDIS_TLS: "true", NODE_EXTRA_CA_CERTS: this.tls.caFile }),
    };
  }

  /**
   * The pool's view of the set. With TLS, a process must trust the test's CA to use it
   * (`NODE_EXTRA_CA_CERTS`, as in {@link env}): the test's own process does not.
   */
  get target(): SentinelTarget {
    return {
      kind: "sentinel",
      sentinels: this.sentinels.map(({ port }) => ({ host: "127.0.0.1", port })),
      name: masterName,
      sentinelPassword,
      password,
      tls: this.tls !== undefined,
    };
  }

  /** The port of the primary the Sentinels name now. */
  async primaryPort(): Promise<number> {
    const sentinel = this.sentinels.find((each) => each.running);
    if (sentinel === undefined) throw new Error("no Sentinel runs");
    const [, port] = (await sentinel.command(
      "SENTINEL",
      "GET-MASTER-ADDR-BY-NAME",
      masterName,
    )) as [string, string];
    return Number(port);
  }

  /** The data node that is the primary now. */
  async primary(): Promise<ServerProcess> {
    const port = await this.primaryPort();
    const found = this.data.find((node) => node.port === port);
    if (found === undefined) throw new Error(`no data node on port ${port}`);
    return found;
  }

  async close(): Promise<void> {
    await Promise.all([...this.sentinels, ...this.data].map((node) => node.kill()));
    await removeDir(this.dir);
  }
}
