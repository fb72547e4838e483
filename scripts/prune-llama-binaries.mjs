#!/usr/bin/env node
/**
 * Removes the node-llama-cpp prebuilt binaries the image cannot use (Dockerfile.gpu runs it after
 * `npm prune --omit=dev`; tests/e2e/image-steps.test.ts runs the same steps outside Docker).
 *
 * Kept, for linux x64 with glibc:
 * - `@node-llama-cpp/linux-x64`: the CPU build (`LLAMA_GPU=off`, the compose file's CPU variant).
 * - `@node-llama-cpp/linux-x64-cuda`: the addon, llama.cpp and the CPU backends it loads first,
 *   but not its `libggml-cuda.so`, which links CUDA 13 (`libcudart.so.13`, driver >= 580): the
 *   image's base is CUDA 12, so that file could never load there.
 * - `@node-llama-cpp/linux-x64-cuda-ext`: `bins/linux-x64-cuda/fallback/libggml-cuda.so`, the
 *   CUDA 12 build that node-llama-cpp loads when the CUDA 13 one is absent or fails to load.
 * Removed: every other platform's package (arm64, armv7l, Vulkan, macOS, Windows).
 *
 * `node scripts/prune-llama-binaries.mjs [node_modules folder]`; prints what it removed.
 */
import { existsSync, readdirSync, rmSync, statSync } from "node:fs";
import path from "node:path";

const nodeModules = path.resolve(process.argv[2] ?? "node_modules");
const scope = path.join(nodeModules, "@node-llama-cpp");
if (!existsSync(scope)) {
  process.stderr.write(`no ${scope}: nothing to prune (was npm ci run?)\n`);
  process.exit(1);
}

const keptPackages = ["linux-x64", "linux-x64-cuda", "linux-x64-cuda-ext"];
const cuda13 = path.join(scope, "linux-x64-cuda", "bins", "linux-x64-cuda", "libggml-cuda.so");
const cuda12 = path.join(
  scope,
  "linux-x64-cuda-ext",
  "bins",
  "linux-x64-cuda",
  "fallback",
  "libggml-cuda.so",
);

function sizeOf(target) {
  const stat = statSync(target);
  if (!stat.isDirectory()) return stat.size;
  return readdirSync(target).reduce((sum, name) => sum + sizeOf(path.join(target, name)), 0);
}

let removedBytes = 0;
const remove = (target) => {
  const bytes = sizeOf(target);
  rmSync(target, { recursive: true, force: true });
  removedBytes += bytes;
  process.stdout.write(`removed ${path.relative(nodeModules, target)} (${mib(bytes)})\n`);
};
const mib = (bytes) => `${(bytes / 2 ** 20).toFixed(1)} MiB`;

for (const name of readdirSync(scope)) {
  if (!keptPackages.includes(name)) remove(path.join(scope, name));
}
if (existsSync(cuda13)) remove(cuda13);
for (const name of keptPackages) {
  if (!existsSync(path.join(scope, name))) {
    process.stderr.write(`@node-llama-cpp/${name} is missing: the image would have no binary\n`);
    process.exit(1);
  }
}
if (!existsSync(cuda12)) {
  process.stderr.write(`${cuda12} is missing: the image would have no CUDA 12 backend\n`);
  process.exit(1);
}
process.stdout.write(
  `removed ${mib(removedBytes)} of unusable binaries; kept ${keptPackages.map((name) => `@node-llama-cpp/${name}`).join(", ")} (${mib(sizeOf(scope))})\n`,
);
