/**
 * A fake Hugging Face Hub: a real local HTTP server answering the requests `@huggingface/hub` and
 * the model downloader make (revision info, paginated tree listing, paths-info, `resolve` with
 * Range, ETag/X-Linked-ETag and X-Repo-Commit, 404 EntryNotFound/RepoNotFound, 401/403 for gated
 * repos). It records every request, can require a token per repo, can cut a file's body part-way
 * (to test resuming) and can slow bodies down (to see progress).
 */
import { createHash } from "node:crypto";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";

export interface FakeRepoFile {
  readonly path: string;
  readonly content: Buffer;
  /** Stored in LFS (has a sha256 `lfs.oid`); default: `.gguf` files. */
  readonly lfs?: boolean;
}

export interface FakeRepo {
  /** `owner/name`. */
  readonly id: string;
  readonly files: readonly FakeRepoFile[];
  /** When set, downloads need `Authorization: Bearer <gatedToken>` (401 without, 403 wrong). */
  readonly gatedToken?: string;
}

export interface RecordedRequest {
  readonly method: string;
  /** Path and query. */
  readonly url: string;
  readonly range: string | undefined;
  /** The bearer token sent, if any (tests check it is passed; it is never logged). */
  readonly token: string | undefined;
}

interface StoredFile extends FakeRepoFile {
  readonly gitOid: string;
  readonly sha256: string;
}

interface StoredRepo {
  readonly id: string;
  readonly sha: string;
  readonly files: StoredFile[];
  readonly gatedToken: string | undefined;
}

export interface FakeHubOptions {
  /** Tree entries per page (the real Hub pages at 1000; small pages test pagination). Default 2. */
  readonly pageSize?: number;
  /** Send file bodies in chunks of this many bytes, waiting `chunkDelayMs` between them. */
  readonly chunkBytes?: number;
  readonly chunkDelayMs?: number;
}

export class FakeHfHub {
  readonly requests: RecordedRequest[] = [];
  /** The most file bodies ever sent at the same time. */
  maxConcurrentBodies = 0;
  #sendingBodies = 0;
  readonly #repos = new Map<string, StoredRepo>();
  readonly #cuts = new Map<string, { afterBytes: number; times: number }>();
  readonly #server: Server;
  readonly #options: FakeHubOptions;
  #closing: Promise<void> | undefined;

  private constructor(server: Server, options: FakeHubOptions) {
    this.#server = server;
    this.#options = options;
  }

  static async start(repos: readonly FakeRepo[], options: FakeHubOptions = {}): Promise<FakeHfHub> {
    let hub: FakeHfHub | undefined;
    const server = createServer((request, response) => {
      if (hub === undefined) return;
      hub.#handle(request, response).catch((error: unknown) => {
        response.destroy(error instanceof Error ? error : new Error(String(error)));
      });
    });
    hub = new FakeHfHub(server, options);
    for (const repo of repos) hub.setRepo(repo);
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    return hub;
  }

  get url(): string {
    return `http://127.0.0.1:${(this.#server.address() as AddressInfo).port}`;
  }

  /** Adds or replaces a repo; its commit sha is derived from its content. */
  setRepo(repo: FakeRepo): { sha: string } {
    const files = repo.files.map((file) => ({
      ...file,
      lfs: file.lfs ?? file.path.endsWith(".gguf"),
      sha256: createHash("sha256").update(file.content).digest("hex"),
      gitOid: createHash("sha1")
        .update(`blob ${file.content.length}\0`)
        .update(file.content)
        .digest("hex"),
    }));
    const commit = createHash("sha1").update(repo.id);
    for (const file of files) commit.update(file.path).update(file.sha256);
    const sha = commit.digest("hex");
    this.#repos.set(repo.id, { id: repo.id, sha, files, gatedToken: repo.gatedToken });
    return { sha };
  }

  /** The commit sha of a repo (derived from its files). */
  commitOf(repoId: string): string {
    const repo = this.#repos.get(repoId);
    if (repo === undefined) throw new Error(`no repo ${repoId}`);
    return repo.sha;
  }

  /** The next `times` downloads of `repoId/path` stop after `afterBytes` bytes of body. */
  cutDownload(repoId: string, path: string, afterBytes: number, times = 1): void {
    this.#cuts.set(`${repoId}/${path}`, { afterBytes, times });
  }

  /** Requests whose URL contains `part`. */
  requestsTo(part: string): RecordedRequest[] {
    return this.requests.filter((request) => request.url.includes(part));
  }

  close(): Promise<void> {
    this.#closing ??= new Promise<void>((resolve) => {
      this.#server.close(() => resolve());
      this.#server.closeAllConnections();
    });
    return this.#closing;
  }

  async #handle(request: IncomingMessage, response: ServerResponse): Promise<void> {
    const url = new URL(request.url ?? "/", this.url);
    const auth = request.headers.authorization;
    const token = auth?.startsWith("Bearer ") ? auth.slice(7) : undefined;
    this.requests.push({
      method: request.method ?? "GET",
      url: `${url.pathname}${url.search}`,
      range: request.headers.range,
      token,
    });
    const body = await readBody(request);
    const parts = url.pathname.split("/").slice(1).map(decodeURIComponent);
    if (parts[0] === "api" && parts[1] === "models") {
      const repo = this.#repos.get(`${parts[2]}/${parts[3]}`);
      if (repo === undefined)
        return sendError(response, 404, "RepoNotFound", "Repository not found");
      const [action, revision, ...rest] = parts.slice(4);
      if (revision !== "main" && revision !== repo.sha && revision !== "HEAD") {
        return sendError(response, 404, "RevisionNotFound", `Invalid rev id: ${revision}`);
      }
      if (action === "revision" && rest.length === 0) return this.#revision(repo, response);
      if (action === "tree") return this.#tree(repo, rest.join("/"), url, response);
      if (action === "paths-info" && request.method === "POST") {
        return this.#pathsInfo(repo, body, response);
      }
      return sendError(response, 404, undefined, "Not found");
    }
    if (parts[2] === "resolve" && parts.length >= 5) {
      const repo = this.#repos.get(`${parts[0]}/${parts[1]}`);
      if (repo === undefined)
        return sendError(response, 404, "RepoNotFound", "Repository not found");
      const revision = parts[3];
      if (revision !== "main" && revision !== repo.sha) {
        return sendError(response, 404, "RevisionNotFound", `Invalid rev id: ${revision}`);
      }
      if (repo.gatedToken !== undefined && token !== repo.gatedToken) {
        return sendError(
          response,
          token === undefined ? 401 : 403,
          "GatedRepo",
          `Access to model ${repo.id} is restricted. You must have access to it and be authenticated to access it.`,
        );
      }
      const file = repo.files.find((candidate) => candidate.path === parts.slice(4).join("/"));
      if (file === undefined) return sendError(response, 404, "EntryNotFound", "Entry not found");
      return this.#resolve(repo, file, request, response);
    }
    sendError(response, 404, undefined, "Not found");
  }

  #revision(repo: StoredRepo, response: ServerResponse): void {
    sendJson(response, 200, {
      _id: repo.sha.slice(0, 24),
      id: repo.id,
      sha: repo.sha,
      private: false,
      gated: repo.gatedToken !== undefined ? "manual" : false,
      disabled: false,
      downloads: 0,
      likes: 0,
      tags: ["gguf"],
      lastModified: "2026-01-01T00:00:00.000Z",
      siblings: repo.files.map((file) => ({ rfilename: file.path })),
    });
  }

  #tree(repo: StoredRepo, folder: string, url: URL, response: ServerResponse): void {
    const recursive = url.searchParams.get("recursive") === "true";
    const prefix = folder === "" ? "" : `${folder}/`;
    const entries = new Map<string, unknown>();
    for (const file of repo.files) {
      if (!file.path.startsWith(prefix)) continue;
      const rest = file.path.slice(prefix.length).split("/");
      // Folders are listed as entries of their own, as the Hub does.
      for (let depth = 1; depth < rest.length && (recursive || depth === 1); depth++) {
        const dir = prefix + rest.slice(0, depth).join("/");
        entries.set(dir, { type: "directory", oid: "0".repeat(40), size: 0, path: dir });
      }
      if (recursive || rest.length === 1) entries.set(file.path, treeEntry(file));
    }
    const all = [...entries.values()];
    const pageSize = this.#options.pageSize ?? 2;
    const cursor = Number(url.searchParams.get("cursor") ?? "0");
    const page = all.slice(cursor, cursor + pageSize);
    if (cursor + pageSize < all.length) {
      const next = new URL(url);
      next.searchParams.set("cursor", String(cursor + pageSize));
      response.setHeader("Link", `<${next.href}>; rel="next"`);
    }
    sendJson(response, 200, page);
  }

  #pathsInfo(repo: StoredRepo, body: string, response: ServerResponse): void {
    const paths = (JSON.parse(body || "{}") as { paths?: string[] }).paths ?? [];
    sendJson(
      response,
      200,
      repo.files
        .filter((file) => paths.includes(file.path))
        .map((file) => ({
          ...treeEntry(file),
          lastCommit: { id: repo.sha, title: "upload", date: "2026-01-01T00:00:00.000Z" },
        })),
    );
  }

  async #resolve(
    repo: StoredRepo,
    file: StoredFile,
    request: IncomingMessage,
    response: ServerResponse,
  ): Promise<void> {
    const size = file.content.length;
    const range = /^bytes=(\d+)-(\d*)$/.exec(request.headers.range ?? "");
    let start = 0;
    let end = size - 1;
    if (range !== null) {
      start = Number(range[1]);
      end =
        range[2] === "" || range[2] === undefined ? size - 1 : Math.min(Number(range[2]), size - 1);
      if (start >= size) {
        response.writeHead(416, { "Content-Range": `bytes */${size}` });
        response.end();
        return;
      }
    }
    const headers: Record<string, string> = {
      "Accept-Ranges": "bytes",
      "Content-Type": "application/octet-stream",
      "Content-Length": String(end - start + 1),
      ETag: `"${file.lfs ? file.sha256 : file.gitOid}"`,
      "X-Repo-Commit": repo.sha,
    };
    if (file.lfs) {
      headers["X-Linked-ETag"] = `"${file.sha256}"`;
      headers["X-Linked-Size"] = String(size);
    }
    if (range !== null) headers["Content-Range"] = `bytes ${start}-${end}/${size}`;
    response.writeHead(range !== null ? 206 : 200, headers);
    if (request.method === "HEAD") {
      response.end();
      return;
    }
    let body = file.content.subarray(start, end + 1);
    const cutKey = `${repo.id}/${file.path}`;
    const cut = this.#cuts.get(cutKey);
    const cutHere = cut !== undefined && body.length > cut.afterBytes;
    if (cut !== undefined && cutHere) {
      body = body.subarray(0, cut.afterBytes);
      if (--cut.times <= 0) this.#cuts.delete(cutKey);
    }
    this.maxConcurrentBodies = Math.max(this.maxConcurrentBodies, ++this.#sendingBodies);
    try {
      await this.#sendBody(response, body, cutHere);
    } finally {
      this.#sendingBodies--;
    }
  }

  async #sendBody(response: ServerResponse, body: Buffer, cutHere: boolean): Promise<void> {
    const chunkBytes = this.#options.chunkBytes ?? body.length;
    for (let at = 0; at < body.length; at += Math.max(1, chunkBytes)) {
      if (at > 0 && this.#options.chunkDelayMs) {
        await new Promise((resolve) => setTimeout(resolve, this.#options.chunkDelayMs));
      }
      await new Promise<void>((resolve) =>
        response.write(body.subarray(at, at + chunkBytes), () => resolve()),
      );
    }
    // A cut closes the connection before the promised Content-Length: the client sees a broken body.
    if (cutHere) response.socket?.destroy();
    else response.end();
  }
}

function treeEntry(file: StoredFile): Record<string, unknown> {
  return {
    type: "file",
    oid: file.gitOid,
    size: file.content.length,
    path: file.path,
    ...(file.lfs ? { lfs: { oid: file.sha256, size: file.content.length, pointerSize: 134 } } : {}),
  };
}

function sendJson(response: ServerResponse, status: number, body: unknown): void {
  response.writeHead(status, { "Content-Type": "application/json; charset=utf-8" });
  response.end(JSON.stringify(body));
}

function sendError(
  response: ServerResponse,
  status: number,
  code: string | undefined,
  message: string,
): void {
  if (code !== undefined) response.setHeader("X-Error-Code", code);
  response.setHeader("X-Error-Message", message);
  sendJson(response, status, { error: message });
}

async function readBody(request: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of request) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString("utf8");
}
