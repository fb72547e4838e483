/**
 * What a Hugging Face model needs before it can load: nothing (it is in the cache — found without
 * any network call), or the files to download at a commit. Offline mode (`HF_HUB_OFFLINE=1`) stops
 * at the cache.
 */
import { ModelLoadError } from "../../../shared/errors/index.js";
import type { HubModelSource } from "../../../shared/models/hub-spec.js";
import { chooseGguf, type GgufWanted } from "./gguf-choice.js";
import { RepoCache } from "./hub-cache.js";
import { type HubClientOptions, type HubFile, headCommit, listRepoFiles } from "./hub-client.js";

export interface HubContext {
  readonly client: HubClientOptions;
  /** `HF_HUB_CACHE`. */
  readonly cacheDir: string;
  readonly offline: boolean;
  /** `HF_QUANT`, for specs without `:QUANT`. */
  readonly quants: readonly string[];
}

/** One file to fetch into the cache. */
export interface HubDownload {
  readonly cache: RepoCache;
  readonly repo: string;
  readonly sha: string;
  readonly file: HubFile;
}

export interface HubModelPlan {
  readonly cache: RepoCache;
  readonly source: HubModelSource;
  readonly sha: string;
  /** Repo paths of the model's parts in order (the first is what llama.cpp opens). */
  readonly paths: readonly string[];
  /** Parts missing from the cache; empty when the model is cached. */
  readonly downloads: readonly HubDownload[];
  /** Whether the plan was made from the cache alone, without the Hub. */
  readonly fromCache: boolean;
}

export function describeSource(source: HubModelSource): string {
  const revision = source.revision === "main" ? "" : `@${source.revision}`;
  if (source.file !== undefined) return `${source.repo}${revision}/${source.file}`;
  return `${source.repo}${revision}${source.quant !== undefined ? `:${source.quant}` : ""}`;
}

function wantedOf(source: HubModelSource, context: HubContext): GgufWanted {
  return {
    repo: source.repo,
    file: source.file,
    quants: source.quant !== undefined ? [source.quant] : context.quants,
  };
}

export async function planHubModel(
  source: HubModelSource,
  context: HubContext,
): Promise<HubModelPlan> {
  const cache = new RepoCache(context.cacheDir, source.repo);
  const cached = await planFromCache(source, cache, context);
  if (cached !== undefined) return cached;
  if (context.offline) {
    throw new ModelLoadError(
      `HF_HUB_OFFLINE is set and ${describeSource(source)} is not in the Hugging Face cache ` +
        `(${cache.folder}): start once with network access, or unset HF_HUB_OFFLINE`,
    );
  }
  const sha = await headCommit(context.client, source.repo, source.revision);
  const files = await listRepoFiles(context.client, source.repo, sha);
  const set = chooseGguf(
    files.map((file) => file.path),
    wantedOf(source, context),
  );
  const byPath = new Map(files.map((file) => [file.path, file]));
  const downloads: HubDownload[] = [];
  for (const repoPath of set.paths) {
    const file = byPath.get(repoPath);
    if (file === undefined) continue; // chooseGguf only returns listed paths
    if ((await cache.snapshotFileSize(sha, repoPath)) === file.size) continue;
    downloads.push({ cache, repo: source.repo, sha, file });
  }
  return { cache, source, sha, paths: set.paths, downloads, fromCache: false };
}

/** The plan when the revision's commit and every part of the model are in the cache. */
async function planFromCache(
  source: HubModelSource,
  cache: RepoCache,
  context: HubContext,
): Promise<HubModelPlan | undefined> {
  const sha = await cache.commitOf(source.revision);
  if (sha === undefined) return undefined;
  const files = await cache.snapshotFiles(sha);
  if (files.length === 0) return undefined;
  try {
    const set = chooseGguf(files, wantedOf(source, context));
    return { cache, source, sha, paths: set.paths, downloads: [], fromCache: true };
  } catch (error) {
    if (error instanceof ModelLoadError) return undefined; // not (all) cached: ask the Hub
    throw error;
  }
}
