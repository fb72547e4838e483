/**
 * Downloads one file into the cache's `blobs/` folder: into `<blob>.incomplete` first, continuing
 * a partial file left by an earlier attempt with an HTTP Range request, checking the size and the
 * hash the Hub published (sha256 = the LFS oid, else the git blob sha1), then renaming it into
 * place. `@huggingface/hub`'s own `downloadFileToCacheDir` neither resumes, reports progress nor
 * verifies, so this does the transfer itself.
 */
import { createHash, type Hash } from "node:crypto";
import { createReadStream, createWriteStream } from "node:fs";
import { mkdir, rename, rm, stat } from "node:fs/promises";
import path from "node:path";
import { pipeline } from "node:stream/promises";
import { ModelLoadError } from "../../../shared/errors/index.js";
import { sleep } from "../../../shared/process/sleep.js";

export interface BlobExpectation {
  readonly size: number;
  /** The LFS oid: the sha256 of the content. */
  readonly sha256?: string | undefined;
  /** The git blob oid: sha1 of `blob <size>\0<content>` (files not in LFS). */
  readonly gitOid?: string | undefined;
}

export interface DownloadBlobOptions {
  /** The `resolve` URL of the file at a commit. */
  readonly url: string;
  readonly accessToken: string | undefined;
  /** Final blob path; the transfer goes to `<blob>.incomplete`. */
  readonly blobPath: string;
  readonly expect: BlobExpectation;
  /** Called with how many bytes of the file are on disk so far (resumed bytes included). */
  readonly onProgress: (doneBytes: number) => void;
  /** Attempts before giving up (network errors, cut bodies, a bad hash). Default 3. */
  readonly attempts?: number;
  /** Wait before attempt n+1: n × this. Default 1000 ms. */
  readonly retryDelayMs?: number;
  /** A transfer receiving nothing for this long is aborted (and retried). Default 60 s. */
  readonly stallTimeoutMs?: number;
  /** Describes the file in messages, e.g. `owner/repo/file.gguf`. */
  readonly label: string;
  /** The error for a refusal (HTTP 401, 403, 404), which is not retried. */
  readonly refused: (status: number) => ModelLoadError;
}

/** A failure not worth retrying (401/403/404): carries the error to report. */
class FinalDownloadError extends Error {
  constructor(readonly error: ModelLoadError) {
    super(error.message);
  }
}

export async function downloadBlob(options: DownloadBlobOptions): Promise<void> {
  const attempts = options.attempts ?? 3;
  const incomplete = `${options.blobPath}.incomplete`;
  await mkdir(path.dirname(options.blobPath), { recursive: true });
  for (let attempt = 1; ; attempt++) {
    try {
      await transfer(options, incomplete);
      await rename(incomplete, options.blobPath);
      return;
    } catch (error) {
      if (error instanceof FinalDownloadError) throw error.error;
      if (attempt >= attempts) {
        throw new ModelLoadError(
          `downloading ${options.label} failed after ${attempt} attempt(s): ${describe(error)}; ` +
            "the partial file is kept and the next start continues it",
          { cause: error },
        );
      }
      await sleep(attempt * (options.retryDelayMs ?? 1000));
    }
  }
}

async function transfer(options: DownloadBlobOptions, incomplete: string): Promise<void> {
  const { expect } = options;
  let offset = (await stat(incomplete).catch(() => undefined))?.size ?? 0;
  if (offset > expect.size) {
    await rm(incomplete, { force: true });
    offset = 0;
  }
  let hash = newHash(expect);
  if (offset > 0) {
    for await (const chunk of createReadStream(incomplete, { end: offset - 1 })) {
      hash.update(chunk as Buffer);
    }
  }
  options.onProgress(offset);
  const controller = new AbortController();
  let stallTimer: NodeJS.Timeout | undefined;
  const armStall = () => {
    clearTimeout(stallTimer);
    stallTimer = setTimeout(
      () => controller.abort(new Error("the transfer stalled")),
      options.stallTimeoutMs ?? 60_000,
    );
  };
  try {
    if (offset < expect.size) {
      armStall();
      const response = await fetch(options.url, {
        headers: {
          ...(offset > 0 ? { Range: `bytes=${offset}-` } : {}),
          ...(options.accessToken ? { Authorization: `Bearer ${options.accessToken}` } : {}),
        },
        signal: controller.signal,
      });
      if (response.status === 401 || response.status === 403 || response.status === 404) {
        await response.body?.cancel();
        throw new FinalDownloadError(options.refused(response.status));
      }
      if (!response.ok || response.body === null) {
        await response.body?.cancel();
        throw new Error(`HTTP ${response.status}`);
      }
      if (offset > 0 && response.status !== 206) {
        // The server ignored the range and sends the whole file: take it from the first byte.
        offset = 0;
        hash = newHash(expect);
        options.onProgress(0);
      }
      const file = createWriteStream(incomplete, { flags: offset > 0 ? "a" : "w" });
      let received = offset;
      const digest = hash;
      await pipeline(
        response.body,
        async function* (chunks: AsyncIterable<Uint8Array>) {
          for await (const chunk of chunks) {
            armStall();
            received += chunk.byteLength;
            if (received > expect.size) {
              throw new Error("the server sent more bytes than the file has");
            }
            digest.update(chunk);
            options.onProgress(received);
            yield chunk;
          }
        },
        file,
      );
    }
  } finally {
    clearTimeout(stallTimer);
  }
  const size = (await stat(incomplete)).size;
  if (size !== expect.size) throw new Error(`got ${size} of ${expect.size} bytes`);
  const digest = hash.digest("hex");
  const wanted = expect.sha256 ?? expect.gitOid;
  if (wanted !== undefined && digest !== wanted.toLowerCase()) {
    // A corrupt partial would fail forever: drop it so the next attempt starts clean.
    await rm(incomplete, { force: true });
    throw new Error(
      `the file's ${expect.sha256 !== undefined ? "sha256" : "git sha1"} does not match the Hub's`,
    );
  }
}
function newHash(expect: BlobExpectation): Hash {
  if (expect.sha256 !== undefined) return createHash("sha256");
  const hash = createHash("sha1");
  hash.update(`blob ${expect.size}\0`);
  return hash;
}

function describe(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  const cause = error.cause as { code?: unknown } | undefined;
  const code = typeof cause?.code === "string" ? ` (${cause.code})` : "";
  return `${error.message}${code}`;
}
