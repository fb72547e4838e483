/**
 * Hugging Face models in `MODELS`, resolved by the gpu-worker's real download code against a real
 * local HTTP server that imitates the Hub (tests/fakes/hf-hub.ts), into a temporary HF_HOME.
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import {
  lstat,
  mkdir,
  mkdtemp,
  readFile,
  readlink,
  realpath,
  rm,
  writeFile,
} from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import { type ResolvedModel, resolveModels } from "../../gpu-worker/models/resolve-models.js";
import { buildTinyLlamaGguf, buildTinyLlamaGgufSplit } from "../../gpu-worker/models/tiny-llama.js";
import { loadConfig } from "../../shared/config/index.js";
import { ErrorCode, ModelLoadError } from "../../shared/errors/index.js";
import { createLogger } from "../../shared/log.js";
import { FakeHfHub } from "../fakes/hf-hub.js";

const small = { embeddingLength: 64, blockCount: 1, headCount: 2, feedForwardLength: 128 };
const gguf = (seed: number) => buildTinyLlamaGguf({ ...small, seed });
const sha256 = (bytes: Buffer) => createHash("sha256").update(bytes).digest("hex");
const TOKEN = "hf_testtoken_9f8e7d6c5b4a";

const files = {
  q4: gguf(1),
  q8: gguf(2),
  f16: gguf(3),
  readme: Buffer.from("# tiny\n"),
};
const split = buildTinyLlamaGgufSplit({ ...small, seed: 4 }, 3);

const repos = [
  {
    id: "tiny-org/Tiny-Chat-GGUF",
    files: [
      { path: "README.md", content: files.readme },
      { path: "tiny-chat-Q4_K_M.gguf", content: files.q4 },
      { path: "tiny-chat-Q8_0.gguf", content: files.q8 },
      { path: "fp/tiny-chat-f16.gguf", content: files.f16 },
      { path: "mmproj-tiny-chat-f16.gguf", content: Buffer.from("projector") },
    ],
  },
  {
    id: "tiny-org/Gated-GGUF",
    files: [{ path: "gated-Q4_K_M.gguf", content: gguf(5) }],
    gatedToken: TOKEN,
  },
  {
    id: "meta-tiny/Tiny-Instruct",
    files: [
      { path: "config.json", content: Buffer.from("{}") },
      { path: "model.safetensors", content: Buffer.from("weights"), lfs: true },
    ],
  },
  {
    id: "tiny-org/Split-GGUF",
    files: [
      ...split.map((content, index) => ({
        path: `Q8_0/split-Q8_0-0000${index + 1}-of-00003.gguf`,
        content,
      })),
      { path: "split-Q4_K_M.gguf", content: gguf(6) },
    ],
  },
  { id: "tiny-org/Resume-GGUF", files: [{ path: "resume-Q4_K_M.gguf", content: gguf(7) }] },
  { id: "tiny-org/Corrupt-GGUF", files: [{ path: "corrupt-Q4_K_M.gguf", content: gguf(8) }] },
  { id: "tiny-org/Slow-GGUF", files: [{ path: "slow-Q4_K_M.gguf", content: gguf(9) }] },
];

describe("Hugging Face models", () => {
  let hub: FakeHfHub;
  let hfHome: string;
  const logs: string[] = [];
  const log = createLogger("test", { write: (line) => logs.push(line) });
  const fast = { retryDelayMs: 10 };

  const config = (models: string, env: Record<string, string> = {}) =>
    loadConfig({ MODELS: models, HF_HOME: hfHome, HF_ENDPOINT: hub.url, ...env });
  const resolve = (models: string, env: Record<string, string> = {}, options = {}) =>
    resolveModels(config(models, env), log, { ...fast, ...options });
  const cacheOf = (repo: string) => path.join(hfHome, "hub", `models--${repo.replace("/", "--")}`);
  const shaOf = (repo: string) => hub.commitOf(repo);

  /** Asserts `promise` rejects with MODEL_LOAD_FAILED and a message containing every text. */
  async function rejects(promise: Promise<unknown>, texts: readonly string[]): Promise<string> {
    let message = "";
    await assert.rejects(promise, (error: unknown) => {
      assert.ok(error instanceof ModelLoadError, `expected a ModelLoadError, got ${String(error)}`);
      assert.equal(error.code, ErrorCode.MODEL_LOAD_FAILED);
      for (const text of texts)
        assert.ok(error.message.includes(text), `"${text}" missing from: ${error.message}`);
      assert.ok(!error.message.includes(TOKEN), "the token is in the message");
      message = error.message;
      return true;
    });
    return message;
  }

  before(async () => {
    hub = await FakeHfHub.start(repos, { pageSize: 2 });
    hfHome = await mkdtemp(path.join(os.tmpdir(), "hf-home-"));
  });
  after(async () => {
    await hub.close();
    await rm(hfHome, { recursive: true, force: true });
    assert.ok(!logs.some((line) => line.includes(TOKEN)), "the token was logged");
  });

  let first: ResolvedModel;

  it("downloads the preferred quantization into HF_HOME in the Python cache layout", async () => {
    const before = hub.requests.length;
    const [model] = await resolve("tiny-org/Tiny-Chat-GGUF");
    assert.ok(model !== undefined);
    first = model;
    const repo = "tiny-org/Tiny-Chat-GGUF";
    const sha = shaOf(repo);
    const folder = cacheOf(repo);
    assert.equal(model.name, "Tiny-Chat-GGUF");
    assert.equal(model.path, path.join(folder, "snapshots", sha, "tiny-chat-Q4_K_M.gguf"));
    assert.deepEqual(model.files, [model.path]);
    assert.equal(model.sizeBytes, files.q4.length);
    // refs/main -> commit; the snapshot entry is a relative link to blobs/<sha256>.
    assert.equal(await readFile(path.join(folder, "refs", "main"), "utf8"), sha);
    assert.ok((await lstat(model.path)).isSymbolicLink());
    assert.equal(await readlink(model.path), path.join("..", "..", "blobs", sha256(files.q4)));
    assert.equal(await realpath(model.path), path.join(folder, "blobs", sha256(files.q4)));
    assert.ok((await readFile(model.path)).equals(files.q4));
    // Only the chosen file was fetched, and the paginated listing was read to its end.
    const made = hub.requests.slice(before);
    const downloads = made.filter((r) => r.url.includes("/resolve/"));
    assert.deepEqual(
      downloads.map((r) => r.url),
      [`/${repo}/resolve/${sha}/tiny-chat-Q4_K_M.gguf`],
    );
    assert.ok(made.filter((r) => r.url.includes("/tree/")).length >= 3, "pagination was followed");
    assert.ok(
      made.every((r) => r.token === undefined),
      "no token is sent when HF_TOKEN is unset",
    );
    assert.ok(logs.some((line) => line.includes("model fetched from Hugging Face")));
  });

  it("starts again from the cache with the Hub down: no network call", async () => {
    const down = await FakeHfHub.start([]);
    const endpoint = down.url;
    await down.close(); // nothing listens there now
    const [model] = await resolveModels(
      loadConfig({ MODELS: "tiny-org/Tiny-Chat-GGUF", HF_HOME: hfHome, HF_ENDPOINT: endpoint }),
      log,
      fast,
    );
    assert.equal(model?.path, first.path);
    assert.equal(down.requests.length, 0);
    assert.ok(logs.some((line) => line.includes("model found in the Hugging Face cache")));
  });

  it("serves from the cache in offline mode, and says so when a model is missing", async () => {
    const before = hub.requests.length;
    const [model] = await resolve("chat=tiny-org/Tiny-Chat-GGUF", { HF_HUB_OFFLINE: "1" });
    assert.equal(model?.name, "chat");
    assert.equal(model?.path, first.path);
    await rejects(resolve("tiny-org/Tiny-Chat-GGUF:Q8_0", { HF_HUB_OFFLINE: "true" }), [
      "HF_HUB_OFFLINE",
      "tiny-org/Tiny-Chat-GGUF:Q8_0",
      "not in the Hugging Face cache",
    ]);
    await rejects(resolve("tiny-org/Resume-GGUF", { HF_HUB_OFFLINE: "1" }), ["HF_HUB_OFFLINE"]);
    assert.equal(hub.requests.length, before, "offline mode made a request");
  });

  it("picks files by quantization: :QUANT, HF_QUANT preference, and lists candidates when none fits", async () => {
    const [q8] = await resolve("tiny-org/Tiny-Chat-GGUF:q8_0");
    assert.ok(q8);
    assert.ok(q8.path.endsWith("tiny-chat-Q8_0.gguf"));
    assert.ok((await readFile(q8.path)).equals(files.q8));
    const [f16] = await resolve("tiny-org/Tiny-Chat-GGUF", { HF_QUANT: "Q5_K_M, F16" });
    assert.ok(f16);
    assert.ok(f16.path.endsWith(path.join("fp", "tiny-chat-f16.gguf")));
    const [named] = await resolve("tiny-org/Tiny-Chat-GGUF/fp/tiny-chat-f16.gguf");
    assert.equal(named?.path, f16.path);
    await rejects(resolve("tiny-org/Tiny-Chat-GGUF:Q2_K"), [
      "no GGUF file of quantization Q2_K",
      "F16, Q4_K_M, Q8_0",
      "tiny-chat-Q4_K_M.gguf",
      "HF_QUANT",
    ]);
    await rejects(resolve("tiny-org/Tiny-Chat-GGUF/nope.gguf"), [
      "nope.gguf",
      "tiny-chat-Q8_0.gguf",
    ]);
  });

  it("refuses a gated repo without HF_TOKEN, with a clear message, and downloads it with one", async () => {
    await rejects(resolve("tiny-org/Gated-GGUF"), ["HTTP 401", "HF_TOKEN", "licence"]);
    await rejects(resolve("tiny-org/Gated-GGUF", { HF_TOKEN: "hf_wrong" }), [
      "HTTP 403",
      "licence",
    ]);
    const [model] = await resolve("tiny-org/Gated-GGUF", { HF_TOKEN: TOKEN });
    assert.ok(model !== undefined && (await readFile(model.path)).length > 0);
    const downloads = hub.requestsTo("/tiny-org/Gated-GGUF/resolve/");
    assert.equal(downloads.at(-1)?.token, TOKEN);
  });

  it("fails fast on a repo without GGUF files and on a repo that does not exist", async () => {
    await rejects(resolve("meta-tiny/Tiny-Instruct"), [
      "meta-tiny/Tiny-Instruct",
      "no GGUF file",
      '"Tiny-Instruct GGUF"',
      "local .gguf path",
    ]);
    await rejects(resolve("tiny-org/No-Such-Repo"), ["tiny-org/No-Such-Repo", "HTTP 404"]);
    await rejects(resolve("tiny-org/Tiny-Chat-GGUF@no-such-branch"), [
      "no-such-branch",
      "HTTP 404",
    ]);
  });

  it("fetches every part of a split GGUF and returns the first part", async () => {
    const repo = "tiny-org/Split-GGUF";
    const [model] = await resolve(`${repo}:Q8_0`);
    const snapshot = path.join(cacheOf(repo), "snapshots", shaOf(repo), "Q8_0");
    const parts = [1, 2, 3].map((n) => path.join(snapshot, `split-Q8_0-0000${n}-of-00003.gguf`));
    assert.equal(model?.path, parts[0]);
    assert.deepEqual(model?.files, parts);
    assert.equal(
      model?.sizeBytes,
      split.reduce((sum, part) => sum + part.length, 0),
    );
    for (const [index, part] of parts.entries()) {
      assert.ok((await readFile(part)).equals(split[index] ?? Buffer.alloc(0)));
    }
    // Naming any part takes the whole set.
    const [byPart] = await resolve(`${repo}/Q8_0/split-Q8_0-00002-of-00003.gguf`);
    assert.deepEqual(byPart?.files, parts);
  });

  it("resumes a download cut mid-body, and continues a partial file left by an earlier start", async () => {
    const repo = "tiny-org/Resume-GGUF";
    const content = repos.find((r) => r.id === repo)?.files[0]?.content ?? Buffer.alloc(0);
    const url = `/${repo}/resolve/${shaOf(repo)}/resume-Q4_K_M.gguf`;
    hub.cutDownload(repo, "resume-Q4_K_M.gguf", 50_000);
    const [model] = await resolve(repo);
    assert.ok(model !== undefined && (await readFile(model.path)).equals(content));
    const attempts = hub.requests.filter((r) => r.url === url);
    assert.deepEqual(
      attempts.map((r) => r.range),
      [undefined, "bytes=50000-"],
    );

    // A partial blob from a start that died: the next start asks only for the rest.
    const blob = path.join(cacheOf(repo), "blobs", sha256(content));
    await rm(path.join(cacheOf(repo)), { recursive: true });
    await mkdir(path.dirname(blob), { recursive: true });
    await writeFile(`${blob}.incomplete`, content.subarray(0, 70_000));
    const [again] = await resolve(repo);
    assert.ok(again !== undefined && (await readFile(again.path)).equals(content));
    assert.equal(hub.requests.filter((r) => r.url === url).at(-1)?.range, "bytes=70000-");
  });

  it("verifies the sha256: a corrupt partial is dropped and the file fetched again", async () => {
    const repo = "tiny-org/Corrupt-GGUF";
    const content = repos.find((r) => r.id === repo)?.files[0]?.content ?? Buffer.alloc(0);
    const blob = path.join(cacheOf(repo), "blobs", sha256(content));
    await mkdir(path.dirname(blob), { recursive: true });
    await writeFile(`${blob}.incomplete`, Buffer.alloc(60_000, 7)); // wrong bytes
    const [model] = await resolve(repo);
    assert.ok(model !== undefined && (await readFile(model.path)).equals(content));
    const ranges = hub.requestsTo(`/${repo}/resolve/`).map((r) => r.range);
    assert.deepEqual(ranges, ["bytes=60000-", undefined]);

    // With a single attempt the mismatch is reported, coded, and nothing is left in blobs/.
    await rm(cacheOf(repo), { recursive: true });
    await mkdir(path.dirname(blob), { recursive: true });
    await writeFile(`${blob}.incomplete`, Buffer.alloc(60_000, 7));
    await rejects(resolve(repo, {}, { attempts: 1 }), ["sha256 does not match"]);
    await assert.rejects(lstat(blob));
  });

  it("downloads several models at once and logs progress lines when stderr is no terminal", async () => {
    const slow = await FakeHfHub.start(repos, { chunkBytes: 16_384, chunkDelayMs: 15 });
    const home = await mkdtemp(path.join(os.tmpdir(), "hf-home-"));
    const lines: string[] = [];
    try {
      const models = await resolveModels(
        loadConfig({
          MODELS: "tiny-org/Slow-GGUF,tiny-org/Split-GGUF:Q8_0,tiny-org/Tiny-Chat-GGUF",
          HF_HOME: home,
          HF_ENDPOINT: slow.url,
        }),
        createLogger("test", { write: (line) => lines.push(line) }),
        { progressIntervalMs: 50 },
      );
      assert.deepEqual(
        models.map((m) => m.name),
        ["Slow-GGUF", "Split-GGUF", "Tiny-Chat-GGUF"],
      );
      assert.ok(
        lines.some((line) => line.includes("download progress") && line.includes("percent=")),
      );
      assert.equal(lines.filter((line) => line.includes("INFO  [test] downloaded ")).length, 5);
      assert.equal(slow.requests.filter((r) => r.url.includes("/resolve/")).length, 5);
      assert.ok(slow.maxConcurrentBodies >= 2, `files were fetched one at a time`);
    } finally {
      await slow.close();
      await rm(home, { recursive: true, force: true });
    }
  });

  it("draws a progress bar on a terminal instead of logging progress lines", async () => {
    const slow = await FakeHfHub.start(repos, { chunkBytes: 8_192, chunkDelayMs: 15 });
    const home = await mkdtemp(path.join(os.tmpdir(), "hf-home-"));
    const drawn: string[] = [];
    const lines: string[] = [];
    try {
      await resolveModels(
        loadConfig({ MODELS: "tiny-org/Slow-GGUF", HF_HOME: home, HF_ENDPOINT: slow.url }),
        createLogger("test", { write: (line) => lines.push(line) }),
        {
          terminal: { write: (text: string) => drawn.push(text), columns: 100 },
          progressIntervalMs: 50,
        },
      );
      assert.ok(
        drawn.some((text) => /^\r\[[#-]+\] +\d+%/.test(text)),
        "no bar was drawn",
      );
      assert.ok(drawn.at(-1)?.includes("\u001b[2K"), "the bar is cleared at the end");
      assert.ok(!lines.some((line) => line.includes("download progress")));
    } finally {
      await slow.close();
      await rm(home, { recursive: true, force: true });
    }
  });

  it("fetches a file once when two starts share the cache (a lock per blob)", async () => {
    const slow = await FakeHfHub.start(repos, { chunkBytes: 16_384, chunkDelayMs: 10 });
    const home = await mkdtemp(path.join(os.tmpdir(), "hf-home-"));
    try {
      const start = (models: string) =>
        resolveModels(
          loadConfig({ MODELS: models, HF_HOME: home, HF_ENDPOINT: slow.url }),
          log,
          fast,
        );
      const [[a], [b, c]] = await Promise.all([
        start("tiny-org/Slow-GGUF"),
        start("x=tiny-org/Slow-GGUF:Q4_K_M,y=tiny-org/Slow-GGUF/slow-Q4_K_M.gguf"),
      ]);
      assert.ok(a && b && c);
      assert.equal(b.path, a.path);
      assert.equal(c.path, a.path);
      assert.ok((await readFile(a.path)).equals(repos[6]?.files[0]?.content ?? Buffer.alloc(0)));
      assert.equal(slow.requests.filter((r) => r.url.includes("/resolve/")).length, 1);
      assert.ok(
        logs.some((line) => line.includes("waiting for another download of the same file")),
      );
    } finally {
      await slow.close();
      await rm(home, { recursive: true, force: true });
    }
  });

  it("pins a revision by commit: served from snapshots/<sha> without writing a ref", async () => {
    const repo = "tiny-org/Tiny-Chat-GGUF";
    const sha = shaOf(repo);
    const before = hub.requests.length;
    const [model] = await resolve(`${repo}@${sha}`);
    assert.equal(model?.path, first.path);
    assert.equal(hub.requests.length, before, "a cached commit needs no request");
  });
});
