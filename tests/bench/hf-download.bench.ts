/**
 * `npm run bench -- hf-download`: the gpu-worker's Hugging Face download (`resolveModels`) from the
 * local fake Hub (tests/fakes/hf-hub.ts, loopback HTTP) of a generated GGUF of a few tens of MB,
 * into a fresh HF_HOME each run: MB/s from the start of `resolveModels` to the verified file in the
 * cache (listing, download, sha256, rename, links). Then the start from the cache: `resolveModels`
 * with the model cached and the Hub gone (nothing listens at HF_ENDPOINT).
 *
 *   BENCH_RUNS=20 npm run bench -- hf-download
 */
import { mkdtemp, readFile, rm, stat } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { resolveModels } from "../../gpu-worker/models/resolve-models.js";
import { loadConfig } from "../../shared/config/index.js";
import { createLogger } from "../../shared/log.js";
import { FakeHfHub } from "../fakes/hf-hub.js";
import { tinyModelPath } from "../support/models.js";
import { benchRuns, print, row, tableHead } from "./bench-stats.js";

const runs = benchRuns();
const repo = "bench-org/Bench-GGUF";
const file = "bench-F16.gguf";
const log = createLogger("bench", { level: "error", write: () => {} });

const content = await readFile(
  await tinyModelPath({
    name: "bench-hub",
    embeddingLength: 1024,
    blockCount: 2,
    headCount: 8,
    feedForwardLength: 2048,
  }),
);
const megabytes = content.length / 1e6;
const hub = await FakeHfHub.start([{ id: repo, files: [{ path: file, content }] }]);
const homes: string[] = [];
const resolveFrom = (home: string, endpoint: string) =>
  resolveModels(
    loadConfig({ MODELS: `${repo}:F16`, HF_HOME: home, HF_ENDPOINT: endpoint }),
    log,
    {},
  );

try {
  const downloadMs: number[] = [];
  const rate: number[] = [];
  let cached = "";
  for (let i = 0; i < runs; i += 1) {
    const home = await mkdtemp(path.join(os.tmpdir(), "bench-hf-"));
    homes.push(home);
    const start = performance.now();
    const [model] = await resolveFrom(home, hub.url);
    const ms = performance.now() - start;
    if (model === undefined || (await stat(model.path)).size !== content.length) {
      throw new Error("the download did not produce the file");
    }
    downloadMs.push(ms);
    rate.push(megabytes / (ms / 1000));
    // Keep only the last cache: the next runs need the disk, the cache-hit runs need one.
    for (const old of homes.splice(0, homes.length - 1)) await rm(old, { recursive: true });
    cached = model.path;
  }
  const endpoint = hub.url;
  await hub.close();
  const home = homes[0] ?? "";
  const hitMs: number[] = [];
  for (let i = 0; i < runs; i += 1) {
    const start = performance.now();
    const [model] = await resolveFrom(home, endpoint);
    hitMs.push(performance.now() - start);
    if (model?.path !== cached) throw new Error("the cache was not used");
  }
  print([
    `\`resolveModels\` against the fake Hub on loopback: one generated GGUF of ${megabytes.toFixed(1)} MB (f16, 2 layers × 1024), a fresh HF_HOME per download in ${os.tmpdir()}, ${runs} runs each.`,
    "",
    ...tableHead,
    row("download into an empty cache, sha256 verified", downloadMs, "ms", 0),
    row("download speed (MB = 10⁶ bytes)", rate, "MB/s", 0),
    row("start from the cache, Hub gone", hitMs, "ms", 2),
  ]);
} finally {
  await hub.close();
  for (const home of homes) await rm(home, { recursive: true, force: true });
}
