/**
 * The Hub calls made before a download, through `@huggingface/hub`: the commit a revision points
 * at, and the repo's file listing at that commit. The library reads neither `HF_ENDPOINT` nor
 * `HF_TOKEN`, so both come from the config. Failures become {@link ModelLoadError}s that say what
 * to do; no message carries the token.
 */
import { HubApiError, listFiles, modelInfo } from "@huggingface/hub";
import type { Config } from "../../../shared/config/index.js";
import { ModelLoadError } from "../../../shared/errors/index.js";

export interface HubClientOptions {
  /** `HF_ENDPOINT`, no trailing slash. */
  readonly hubUrl: string;
  /** `HF_TOKEN`. */
  readonly accessToken: string | undefined;
}

export function hubClientOptions(config: Config): HubClientOptions {
  return { hubUrl: config.hfEndpoint, accessToken: config.hfToken };
}

/** A file of a repo at a commit, as listed by the Hub. */
export interface HubFile {
  readonly path: string;
  readonly size: number;
  /** sha256 of the content, for files stored in LFS (every large file). */
  readonly sha256: string | undefined;
  /** The git blob id. */
  readonly gitOid: string | undefined;
}

/** The commit `revision` of `repo` points at now. */
export async function headCommit(
  client: HubClientOptions,
  repo: string,
  revision: string,
): Promise<string> {
  try {
    const info = await modelInfo({
      name: repo,
      revision,
      additionalFields: ["sha"],
      hubUrl: client.hubUrl,
      ...(client.accessToken ? { accessToken: client.accessToken } : {}),
    });
    if (typeof info.sha !== "string" || !/^[0-9a-f]{40}$/.test(info.sha)) {
      throw new ModelLoadError(
        `the Hub at ${client.hubUrl} gave no commit for ${repo}@${revision}`,
      );
    }
    return info.sha;
  } catch (error) {
    throw hubError(
      error,
      client,
      repo,
      revision === "main" ? `model repo ${repo}` : `model repo ${repo} at revision ${revision}`,
    );
  }
}

/** Every file of `repo` at commit `sha` (the listing is paginated; all pages are read). */
export async function listRepoFiles(
  client: HubClientOptions,
  repo: string,
  sha: string,
): Promise<HubFile[]> {
  const files: HubFile[] = [];
  try {
    for await (const entry of listFiles({
      repo,
      revision: sha,
      recursive: true,
      hubUrl: client.hubUrl,
      ...(client.accessToken ? { accessToken: client.accessToken } : {}),
    })) {
      if (entry.type !== "file") continue;
      files.push({
        path: entry.path,
        size: entry.lfs?.size ?? entry.size,
        sha256: entry.lfs?.oid,
        gitOid: entry.oid,
      });
    }
  } catch (error) {
    throw hubError(error, client, repo, `the file list of ${repo}`);
  }
  return files;
}

/** Turns a failed Hub call into a message that says what to do. */
export function hubError(
  error: unknown,
  client: HubClientOptions,
  repo: string,
  what: string,
): ModelLoadError {
  if (error instanceof ModelLoadError) return error;
  if (error instanceof HubApiError) {
    const status = error.statusCode;
    if (status === 401 || status === 403 || status === 404) {
      return hubRefusal(status, client, repo, what, error);
    }
    return new ModelLoadError(`the Hugging Face Hub answered HTTP ${status} for ${what}`, {
      cause: error,
    });
  }
  const cause = (error as { cause?: { code?: unknown; message?: unknown } } | undefined)?.cause;
  const reason = typeof cause?.code === "string" ? cause.code : cause?.message;
  const code = typeof reason === "string" ? ` (${reason})` : "";
  return new ModelLoadError(
    `could not reach the Hugging Face Hub at ${client.hubUrl} for ${what}${code}; ` +
      "with HF_HUB_OFFLINE=1 models are served from the cache only",
    { cause: error },
  );
}

/** The message for HTTP 401/403 (gated, private, bad token) and 404 from the Hub. */
export function hubRefusal(
  status: number,
  client: HubClientOptions,
  repo: string,
  what: string,
  cause?: unknown,
): ModelLoadError {
  const page = `${client.hubUrl}/${repo}`;
  if (status === 401 || status === 403) {
    return new ModelLoadError(
      client.accessToken === undefined
        ? `Hugging Face refused ${what} (HTTP ${status}): the repo is gated or private, or does ` +
            `not exist. For a gated model, accept its licence on ${page} and set HF_TOKEN to a ` +
            "token of that account"
        : `Hugging Face refused ${what} with the HF_TOKEN given (HTTP ${status}): accept the ` +
            `model's licence on ${page} with the token's account, or use a token that can read the repo`,
      { cause },
    );
  }
  if (status === 404) {
    return new ModelLoadError(
      `Hugging Face has no ${what} at ${client.hubUrl} (HTTP 404): check the owner/name, revision and file`,
      { cause },
    );
  }
  return new ModelLoadError(`the Hugging Face Hub answered HTTP ${status} for ${what}`, { cause });
}
