#!/usr/bin/env node
/**
 * Removes the node-llama-cpp prebuilt binaries the image does not use (Dockerfile.gpu runs it after
 * `npm prune --omit=dev`; tests/e2e/image-steps.test.ts runs the same steps outside Docker).
 *
 * Kept, for linux x64 with glibc: `@node-llama-cpp/linux-x64`, the CPU build (`LLAMA_GPU=off`, the
 * compose file's CPU variant).
 *
 * Removed: every other package, the prebuilt CUDA ones included. The image's CUDA backend is
 * compiled in its cuda-build stage for the GPUs it serves, into node-llama-cpp's
 * `llama/localBuilds/linux-x64-cuda`, which `getLlama({build: "never", gpu: "cuda"})` loads before
 * any prebuilt binary (node-llama-cpp's `loadExistingLlamaBinary` tries the local build first). A
 * prebuilt CUDA build would only be loaded if the local one failed to load, and then for the same
 * reasons (the same CUDA 12 libraries and driver) it would fail too, while a GPU that the local
 * build has no code for is not found out at load time but at the first kernel launch: so the
 * prebuilt could not serve as a fallback, and it is large (`@node-llama-cpp/linux-x64-cuda-ext`'s
 * CUDA 12 `libggml-cuda.so` alone is 374 MB, `@node-llama-cpp/linux-x64-cuda`'s CUDA 13 one, which
 * could never load on the image's CUDA 12 base, 159 MB). Also removed: the arm64, armv7l and
 * Vulkan packages, and those of any other platform.
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

const keptPackages = ["linux-x64"];

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
for (const name of keptPackages) {
  if (!existsSync(path.join(scope, name))) {
    process.stderr.write(
      `@node-llama-cpp/${name} is missing: the image would have no CPU binary\n`,
    );
    process.exit(1);
  }
}
process.stdout.write(
  `removed ${mib(removedBytes)} of binaries the image does not use; kept ${keptPackages.map((name) => `@node-llama-cpp/${name}`).join(", ")} (${mib(sizeOf(scope))})\n`,
);
