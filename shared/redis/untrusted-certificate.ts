/**
 * A Redis server's TLS certificate that this process does not accept: its CA is not trusted, it
 * expired, or it does not name the host. Waiting will not change it, so a starting process stops
 * at once (a configuration error) instead of waiting `REDIS_CONNECT_TIMEOUT_MS`.
 */
import tls from "node:tls";
import type { HostPort } from "./redis-target.js";

/** Node's codes for a certificate it checked and turned down. */
const certificateCodes = new Set([
  "DEPTH_ZERO_SELF_SIGNED_CERT",
  "SELF_SIGNED_CERT_IN_CHAIN",
  "UNABLE_TO_VERIFY_LEAF_SIGNATURE",
  "UNABLE_TO_GET_ISSUER_CERT",
  "UNABLE_TO_GET_ISSUER_CERT_LOCALLY",
  "CERT_HAS_EXPIRED",
  "CERT_NOT_YET_VALID",
  "CERT_UNTRUSTED",
  "ERR_TLS_CERT_ALTNAME_INVALID",
]);

/**
 * The same, as their messages read (a Sentinel connection passes on only the message: "All
 * sentinels are unreachable... Last error: self-signed certificate").
 */
const certificateMessages =
  /self[- ]signed certificate|unable to (verify|get) .*certificate|certificate (has expired|is not yet valid)|Hostname\/IP does not match certificate/i;

/**
 * Why the server's certificate was turned down, in words for an operator that say what to change,
 * or `undefined` when `error` is no such failure.
 */
export function describeUntrustedCertificate(error: Error): string | undefined {
  const code = (error as NodeJS.ErrnoException).code;
  if (!certificateCodes.has(code ?? "") && !certificateMessages.test(error.message)) {
    return undefined;
  }
  return (
    `the server's TLS certificate is not accepted (${error.message.slice(0, 200)}): its CA must ` +
    "be in the system's store or in NODE_EXTRA_CA_CERTS (a PEM file, set for every process), " +
    "and its names must include the host connected to"
  );
}

/**
 * The error of a TLS handshake with `node` (Node's own checks, as ioredis's `tls: {}` makes them),
 * `undefined` when it succeeds or fails otherwise. ioredis's cluster and Sentinel clients swallow
 * their nodes' handshake errors ("Connection is closed"); this finds the cause.
 */
export async function certificateErrorOf(
  node: HostPort,
  timeoutMs: number,
): Promise<Error | undefined> {
  return new Promise((resolve) => {
    const socket = tls.connect({ host: node.host, port: node.port });
    const done = (error: Error | undefined) => {
      clearTimeout(timer);
      socket.destroy();
      resolve(error !== undefined && describeUntrustedCertificate(error) ? error : undefined);
    };
    const timer = setTimeout(() => done(undefined), timeoutMs);
    socket.once("secureConnect", () => done(undefined));
    socket.once("error", done);
  });
}
