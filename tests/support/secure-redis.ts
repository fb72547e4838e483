/**
 * A private redis-server that requires a password and, when this redis-server and openssl can,
 * also serves TLS with a self-signed certificate made at test time. For testing `REDIS_URL` with
 * `redis://:password@` and `rediss://`.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { freePort, redisAnswers } from "../../shared/redis/index.js";
import { makeTestCertificate, redisTlsConfig } from "./test-certificate.js";
import { waitFor } from "./wait-for.js";

export interface SecureRedis {
  password: string;
  /** `redis://:<password>@127.0.0.1:<port>` */
  url: string;
  /** `rediss://:<password>@127.0.0.1:<tls port>`, when TLS could be set up. */
  tlsUrl: string | undefined;
  /** The certificate to trust (`NODE_EXTRA_CA_CERTS`), when TLS is on. */
  caFile: string | undefined;
  /** Why there is no TLS, when there is none. */
  noTlsReason: string | undefined;
  close(): Promise<void>;
}

export async function startSecureRedis(): Promise<SecureRedis> {
  const dir = await mkdtemp(path.join(os.tmpdir(), "secure-redis-"));
  const password = randomBytes(12).toString("hex");
  const port = await freePort();
  const certificate = makeTestCertificate(dir);
  let noTlsReason = certificate === undefined ? "openssl could not make a certificate" : undefined;
  const base = ["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"];
  const auth = ["--requirepass", password, "--port", String(port)];
  let tlsPort: number | undefined;
  let child: ChildProcess | undefined;
  if (certificate !== undefined) {
    tlsPort = await freePort();
    // The config file's lines as command-line options: `--tls-cert-file <file>`, ...
    const tls = ["--tls-port", String(tlsPort)];
    for (const line of redisTlsConfig(certificate)) {
      const [name = "", ...value] = line.split(" ");
      tls.push(`--${name}`, value.join(" "));
    }
    child = await start([...base, ...auth, ...tls], `redis://:${password}@127.0.0.1:${port}`);
    if (child === undefined) noTlsReason = "this redis-server was built without TLS";
  }
  if (child === undefined) {
    tlsPort = undefined;
    child = await start([...base, ...auth], `redis://:${password}@127.0.0.1:${port}`);
  }
  if (child === undefined) throw new Error("redis-server with --requirepass did not start");
  const server = child;
  return {
    password,
    url: `redis://:${password}@127.0.0.1:${port}`,
    tlsUrl: tlsPort === undefined ? undefined : `rediss://:${password}@127.0.0.1:${tlsPort}`,
    caFile: tlsPort === undefined ? undefined : certificate?.caFile,
    noTlsReason,
    async close() {
      if (server.exitCode === null && server.signalCode === null) {
        await new Promise<void>((resolve) => {
          server.once("exit", () => resolve());
          server.kill("SIGTERM");
        });
      }
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** Starts redis-server with `args`; the process once `url` answers, `undefined` if it exits. */
async function start(args: string[], url: string): Promise<ChildProcess | undefined> {
  const child = spawn("redis-server", args, { stdio: "ignore" });
  child.on("error", () => {});
  const exited = () => child.exitCode !== null || child.signalCode !== null;
  const answers = await waitFor(
    async () => exited() || (await redisAnswers(url, 500)),
    10_000,
    "redis-server to answer",
    50,
  ).then(
    () => !exited(),
    () => false,
  );
  if (answers) return child;
  child.kill("SIGKILL");
  return undefined;
}
