/**
 * A self-signed certificate made at test time with openssl, for TLS Redis in tests: valid for
 * 127.0.0.1 and localhost, and its own CA (servers' `tls-ca-cert-file`, clients'
 * `NODE_EXTRA_CA_CERTS`).
 */
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import path from "node:path";

/** A certificate, its key, and the CA to trust for it (the certificate itself). */
export interface TlsFiles {
  certFile: string;
  keyFile: string;
  caFile: string;
}

/** Writes `cert.pem` and `key.pem` in `dir`; `undefined` when openssl could not make them. */
export function makeTestCertificate(dir: string): TlsFiles | undefined {
  const certFile = path.join(dir, "cert.pem");
  const keyFile = path.join(dir, "key.pem");
  const openssl = spawnSync(
    "openssl",
    [
      "req",
      "-x509",
      "-newkey",
      "rsa:2048",
      "-nodes",
      "-days",
      "1",
      "-subj",
      "/CN=127.0.0.1",
      "-addext",
      "subjectAltName=IP:127.0.0.1,DNS:localhost",
      "-keyout",
      keyFile,
      "-out",
      certFile,
    ],
    { encoding: "utf8" },
  );
  if (openssl.error !== undefined || openssl.status !== 0) return undefined;
  return { certFile, keyFile, caFile: certFile };
}

/** A redis-server's TLS settings (config file lines) serving `files`; clients need no certificate. */
export function redisTlsConfig(files: TlsFiles): string[] {
  return [
    `tls-cert-file ${files.certFile}`,
    `tls-key-file ${files.keyFile}`,
    `tls-ca-cert-file ${files.caFile}`,
    "tls-auth-clients no",
  ];
}

/** ioredis's `tls` option for a client of the test's own that trusts `files`' CA. */
export function tlsClientOptions(files: TlsFiles): { ca: Buffer } {
  return { ca: readFileSync(files.caFile) };
}
