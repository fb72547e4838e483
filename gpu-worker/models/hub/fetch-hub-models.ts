/**
 * Fetches what the plans of a start lack — every part of every model, several at once — then
 * records each revision's commit in `refs/`, so the next start (and Python) finds the models in
 * the cache without asking the Hub.
 */
import { mkdir, stat } from "node:fs/promises";
import path from "node:path";
import { ModelLoadError } from "../../../shared/errors/index.js";
import type { Logger } from "../../../shared/log.js";
import { withBlobLock } from "./blob-lock.js";
import { downloadBlob } from "./download-blob.js";
import { DownloadProgress } from "./download-progress.js";
import { type HubClientOptions, hubRefusal } from "./hub-client.js";
import type { HubDownload, HubModelPlan } from "./hub-model-plan.js";

export interface FetchOptions {
  readonly client: HubClientOptions;
  readonly log: Logger;
  /** Files downloaded at once. Default 8 (as `huggingface_hub`). */
  readonly concurrency?: number;
  /** Where to draw a progress bar; `undefined` logs progress lines instead. */
  readonly terminal?: { write(text: string): unknown; columns?: number } | undefined;
  /** Between progress log lines. Default 10 s. */
  readonly progressIntervalMs?: number;
  /** Passed to each download (tests shorten them). */
  readonly retryDelayMs?: number;
  readonly attempts?: number;
}

export async function fetchHubModels(
  plans: readonly HubModelPlan[],
  options: FetchOptions,
): Promise<void> {
  const downloads = plans.flatMap((plan) => plan.downloads);
  if (downloads.length > 0) {
    const progress = new DownloadProgress({
      log: options.log,
      totalBytes: downloads.reduce((sum, download) => sum + download.file.size, 0),
      files: downloads.length,
      terminal: options.terminal,
      intervalMs: options.progressIntervalMs,
    });
    try {
      await runLimited(downloads, options.concurrency ?? 8, (download) =>
        fetchOne(download, progress, options),
      );
    } finally {
      progress.close();
    }
  }
  for (const plan of plans) {
    if (!plan.fromCache) await plan.cache.writeRef(plan.source.revision, plan.sha);
  }
}

async function fetchOne(
  download: HubDownload,
  progress: DownloadProgress,
  options: FetchOptions,
): Promise<void> {
  const { cache, file, repo, sha } = download;
  const etag = file.sha256 ?? file.gitOid;
  const label = `${repo}/${file.path}`;
  const key = `${repo}@${sha}/${file.path}`;
  if (etag === undefined) throw new ModelLoadError(`the Hub listed ${label} without an id`);
  const blob = cache.blobPath(etag);
  const present = async () => (await stat(blob).catch(() => undefined))?.size === file.size;
  if (!(await present())) {
    await mkdir(path.dirname(blob), { recursive: true });
    await withBlobLock(
      blob,
      async () => {
        // Whoever held the lock may have finished the file meanwhile.
        if (await present()) return;
        await downloadBlob({
          url: `${options.client.hubUrl}/${repo}/resolve/${sha}/${file.path.split("/").map(encodeURIComponent).join("/")}`,
          accessToken: options.client.accessToken,
          blobPath: blob,
          expect: { size: file.size, sha256: file.sha256, gitOid: file.gitOid },
          onProgress: (done) => progress.update(key, done),
          label,
          refused: (status) => hubRefusal(status, options.client, repo, label),
          ...(options.attempts !== undefined ? { attempts: options.attempts } : {}),
          ...(options.retryDelayMs !== undefined ? { retryDelayMs: options.retryDelayMs } : {}),
        });
      },
      {
        onWait: () =>
          options.log.info("waiting for another download of the same file", { file: label }),
      },
    );
  }
  await cache.link(sha, file.path, etag);
  progress.fileDone(key, label, file.size);
}

/** Runs `work` over `items`, at most `limit` at a time; rejects with the first failure. */
async function runLimited<T>(
  items: readonly T[],
  limit: number,
  work: (item: T) => Promise<void>,
): Promise<void> {
  let next = 0;
  let failure: { error: unknown } | undefined;
  const lane = async () => {
    while (failure === undefined && next < items.length) {
      const item = items[next++] as T;
      try {
        await work(item);
      } catch (error) {
        failure ??= { error };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, lane));
  if (failure !== undefined) throw failure.error;
}
