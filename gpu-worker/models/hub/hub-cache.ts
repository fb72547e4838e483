/**
 * The Hugging Face cache layout, the same as Python's `huggingface_hub` (so either can fill it and
 * both can read it): `<cache>/models--owner--name/{blobs/<etag>, snapshots/<commit>/<path> (relative
 * symlinks to the blobs), refs/<revision> (the commit the revision pointed at)}`.
 */
import { mkdir, readdir, readFile, rename, rm, stat, symlink, writeFile } from "node:fs/promises";
import path from "node:path";

const commitPattern = /^[0-9a-f]{40}$/;

export function isCommitSha(revision: string): boolean {
  return commitPattern.test(revision);
}

/** One repo's folder in the cache. */
export class RepoCache {
  readonly folder: string;

  constructor(cacheDir: string, repo: string) {
    this.folder = path.join(cacheDir, `models--${repo.replaceAll("/", "--")}`);
  }

  /** The commit `revision` resolves to offline: itself when it is a sha, else `refs/<revision>`. */
  async commitOf(revision: string): Promise<string | undefined> {
    if (isCommitSha(revision)) return revision;
    const text = await readFile(path.join(this.folder, "refs", revision), "utf8").catch(() => "");
    const sha = text.trim();
    return isCommitSha(sha) ? sha : undefined;
  }

  /** Records that `revision` points at `sha` (Python does the same; a sha needs no ref). */
  async writeRef(revision: string, sha: string): Promise<void> {
    if (revision === sha) return;
    const file = path.join(this.folder, "refs", revision);
    await mkdir(path.dirname(file), { recursive: true });
    const temp = `${file}.${process.pid}.tmp`;
    await writeFile(temp, sha);
    await rename(temp, file);
  }

  snapshotPath(sha: string, repoPath: string): string {
    return path.join(this.folder, "snapshots", sha, ...repoPath.split("/"));
  }

  blobPath(etag: string): string {
    return path.join(this.folder, "blobs", etag);
  }

  /** Every file of a snapshot whose link resolves (repo paths with "/"), for choosing offline. */
  async snapshotFiles(sha: string): Promise<string[]> {
    const root = path.join(this.folder, "snapshots", sha);
    const entries = await readdir(root, { recursive: true }).catch(() => [] as string[]);
    const files: string[] = [];
    for (const entry of entries) {
      const info = await stat(path.join(root, entry)).catch(() => undefined);
      if (info?.isFile()) files.push(entry.split(path.sep).join("/"));
    }
    return files;
  }

  /** Size of the file at `repoPath` in the snapshot, following the link; `undefined` if absent. */
  async snapshotFileSize(sha: string, repoPath: string): Promise<number | undefined> {
    const info = await stat(this.snapshotPath(sha, repoPath)).catch(() => undefined);
    return info?.isFile() ? info.size : undefined;
  }

  /** Points `snapshots/<sha>/<repoPath>` at `blobs/<etag>` with a relative link, as Python does. */
  async link(sha: string, repoPath: string, etag: string): Promise<string> {
    const pointer = this.snapshotPath(sha, repoPath);
    await mkdir(path.dirname(pointer), { recursive: true });
    const target = path.relative(path.dirname(pointer), this.blobPath(etag));
    await rm(pointer, { force: true });
    try {
      await symlink(target, pointer);
    } catch (error) {
      // Another process sharing the cache linked it first: same name, same blob.
      if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error;
    }
    return pointer;
  }
}
