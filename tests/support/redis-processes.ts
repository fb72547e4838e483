/**
 * Redis server processes of a test's own, for the cluster and Sentinel harnesses: each in a temp
 * folder, on a free loopback port, killed when the test closes it or its process exits. The
 * binaries come from `TEST_REDIS_SERVER` and `TEST_REDIS_CLI` (default `redis-server` and
 * `redis-cli` from PATH), so the same tests run on Valkey (`valkey-server`, `valkey-cli`).
 */
import { type ChildProcess, execFile, spawn } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { Redis } from "ioredis";
import { freePort } from "../../shared/redis/index.js";
import { redisTlsConfig, type TlsFiles, tlsClientOptions } from "./test-certificate.js";
import { waitFor } from "./wait-for.js";

const run = promisify(execFile);

const serverBinary = process.env.TEST_REDIS_SERVER || "redis-server";
const cliBinary = process.env.TEST_REDIS_CLI || "redis-cli";

const live = new Set<ChildProcess>();
process.once("exit", () => {
  for (const child of live) child.kill("SIGKILL");
});

/** How a client of the test's own reaches a server: its password, and its TLS when it has one. */
export interface NodeAccess {
  password?: string | undefined;
  /** The server is TLS-only (`port 0`, `tls-port`); clients trust this certificate's CA. */
  tls?: TlsFiles | undefined;
}

/** One server process: a data node or a Sentinel. */
export class ServerProcess {
  readonly #child: ChildProcess;

  constructor(
    readonly port: number,
    child: ChildProcess,
    readonly access: NodeAccess,
  ) {
    this.#child = child;
    live.add(child);
    child.once("exit", () => live.delete(child));
  }

  get running(): boolean {
    return this.#child.exitCode === null && this.#child.signalCode === null;
  }

  get pid(): number | undefined {
    return this.#child.pid;
  }

  get address(): string {
    return `127.0.0.1:${this.port}`;
  }

  /** Sends it `signal` without waiting (SIGSTOP, SIGCONT). */
  signal(signal: NodeJS.Signals): void {
    this.#child.kill(signal);
  }

  /** One command to this server (a short-lived connection), its reply. */
  command(...args: string[]): Promise<unknown> {
    return command(this.port, this.access, ...args);
  }

  /** Kills it with `signal` (SIGKILL: a crash) and waits until it is gone. */
  async kill(signal: NodeJS.Signals = "SIGKILL"): Promise<void> {
    if (!this.running) return;
    const exited = new Promise<void>((resolve) => this.#child.once("exit", () => resolve()));
    // Unreferenced while it serves; referenced again so the caller's loop waits for its exit.
    this.#child.ref();
    this.#child.kill(signal);
    await exited;
  }
}

/** A temp folder of a topology, removed with it. */
export async function topologyDir(label: string): Promise<string> {
  return mkdtemp(path.join(os.tmpdir(), `pool-${label}-`));
}

export async function removeDir(dir: string): Promise<void> {
  await rm(dir, { recursive: true, force: true });
}

/**
 * Starts `redis-server <conf file>` (with `--sentinel` for a Sentinel) on a free port, or on
 * `options.port`, the config written in `dir`, and waits until it answers PING. A server started
 * again on its port, in its folder, loads what it last saved there (`SAVE`). With `tls` the port
 * is a TLS port and there is no plain one (`port 0`); replication and a Sentinel's links to its
 * data nodes and to the other Sentinels are TLS too (`tls-replication yes`).
 */
export async function startServer(
  dir: string,
  config: (port: number) => string[] | Promise<string[]>,
  options: { sentinel?: boolean; port?: number } & NodeAccess = {},
): Promise<ServerProcess> {
  const port = options.port ?? (await freePort());
  const file = path.join(dir, `${port}.conf`);
  const { tls } = options;
  const listen =
    tls === undefined
      ? [`port ${port}`]
      : ["port 0", `tls-port ${port}`, ...redisTlsConfig(tls), "tls-replication yes"];
  const lines = [
    ...listen,
    "bind 127.0.0.1",
    `dir ${dir}`,
    ...(options.sentinel ? [] : ['save ""', "appendonly no"]),
    ...(await config(port)),
  ];
  await writeFile(file, `${lines.join("\n")}\n`);
  const args = options.sentinel ? [file, "--sentinel"] : [file];
  const child = spawn(serverBinary, args, { stdio: "ignore" });
  child.unref();
  const access = { password: options.password, tls };
  const server = new ServerProcess(port, child, access);
  await waitFor(
    async () => {
      if (!server.running) throw new Error(`${serverBinary} on port ${port} exited at start`);
      return (await server.command("PING").catch(() => "")) === "PONG";
    },
    10_000,
    `${serverBinary} on port ${port} to answer`,
    50,
  );
  return server;
}

async function command(port: number, access: NodeAccess, ...args: string[]): Promise<unknown> {
  const redis = new Redis({
    port,
    host: "127.0.0.1",
    password: access.password,
    tls: access.tls === undefined ? undefined : tlsClientOptions(access.tls),
    lazyConnect: true,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
    connectTimeout: 1000,
  });
  redis.on("error", () => {});
  try {
    await redis.connect();
    const [name = "", ...rest] = args;
    return await redis.call(name, ...rest);
  } finally {
    redis.disconnect();
  }
}

/** Runs the CLI (`redis-cli --cluster create ...`) as a client with `access`. */
export async function cli(access: NodeAccess, args: string[]): Promise<string> {
  const options = [
    ...(access.password === undefined ? [] : ["-a", access.password, "--no-auth-warning"]),
    ...(access.tls === undefined ? [] : ["--tls", "--cacert", access.tls.caFile]),
  ];
  const { stdout } = await run(cliBinary, [...options, ...args], { timeout: 60_000 });
  return stdout;
}
