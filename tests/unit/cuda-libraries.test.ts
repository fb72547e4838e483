/**
 * The image runs a CUDA backend that its cuda-build stage compiles with the CUDA 12.6 toolkit (see
 * Dockerfile.gpu), on a CUDA 12.6 runtime base. Without a Docker engine, a CUDA toolkit or a GPU
 * here, that build cannot happen here; the check the stage runs on it, docker/check-cuda-build.mjs
 * (the GPU code's architectures, the files node-llama-cpp needs, every NEEDED library beside the
 * binary, in the runtime base — written down with its sources in docker/cuda-base-libraries.json —
 * or the host driver's, no glibc/libstdc++ symbol newer than the base's), is checked here on
 * node-llama-cpp's own prebuilt CUDA builds, real binaries whose contents its CMakeLists states:
 * it passes the CUDA 12 one and refuses what would not run on the base. The prebuilt CPU build the
 * image keeps (`LLAMA_GPU=off`) is checked against the base the same way. Needs `readelf`
 * (binutils) and the linux-x64 packages that `npm ci` installs on linux x64.
 */
import assert from "node:assert/strict";
import { execFileSync, spawnSync } from "node:child_process";
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, describe, it } from "node:test";
import { pathToFileURL } from "node:url";
import { packageRoot } from "../../shared/paths.js";

interface BaseLibraries {
  image: string;
  cudaMajor: number;
  packages: Record<string, string[]>;
  system: Record<string, string[]>;
  hostDriver: string[];
  symbolVersions: Record<string, string>;
}

interface Architectures {
  sass: number[];
  ptx: number[];
}

/** docker/check-cuda-build.mjs, the check the image's cuda-build stage runs. */
interface CudaBuildCheck {
  fatbinArchitectures(file: string): Architectures | undefined;
  neededLibraries(file: string): string[];
  linkProblems(files: string[], beside: Set<string>, base: BaseLibraries): string[];
}

const root = packageRoot();
const checkScript = path.join(root, "docker", "check-cuda-build.mjs");
const baseFile = path.join(root, "docker", "cuda-base-libraries.json");
const base = JSON.parse(readFileSync(baseFile, "utf8")) as BaseLibraries;
const check = (await import(pathToFileURL(checkScript).href)) as CudaBuildCheck;
const scope = path.join(root, "node_modules", "@node-llama-cpp");
const cudaBins = path.join(scope, "linux-x64-cuda", "bins", "linux-x64-cuda");
const cpuBins = path.join(scope, "linux-x64", "bins", "linux-x64");
const fallback = path.join(
  scope,
  "linux-x64-cuda-ext",
  "bins",
  "linux-x64-cuda",
  "fallback",
  "libggml-cuda.so",
);
const cuda13 = path.join(cudaBins, "libggml-cuda.so");
const hasReadelf = (() => {
  try {
    execFileSync("readelf", ["--version"], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
})();
const skip = !hasReadelf
  ? "readelf is missing (apt-get install binutils)"
  : !existsSync(fallback) || !existsSync(cuda13)
    ? "node-llama-cpp's linux-x64 CUDA packages are not installed (not linux x64)"
    : false;

/** The shared libraries and the addon of a folder of node-llama-cpp binaries. */
const binariesIn = (folder: string, except: string[] = []) =>
  readdirSync(folder)
    .filter((name) => /\.(so|node)$/.test(name) && !except.includes(name))
    .map((name) => path.join(folder, name));

const work = mkdtempSync(path.join(os.tmpdir(), "llmpool-cuda-check-"));
after(() => rmSync(work, { recursive: true, force: true }));

/**
 * node-llama-cpp's prebuilt CUDA 12 build laid out as a local build folder (`Release/` and
 * `buildDone.status`, as `getLlama` wants it), of links to the real files: the addon, llama.cpp
 * and the CPU backends of `@node-llama-cpp/linux-x64-cuda`, the CUDA 12 `libggml-cuda.so` of
 * `-ext`.
 */
function prebuiltAsLocalBuild(): string {
  const folder = path.join(work, "linux-x64-cuda");
  const release = path.join(folder, "Release");
  mkdirSync(release, { recursive: true });
  for (const name of readdirSync(cudaBins)) {
    if (name !== "libggml-cuda.so")
      symlinkSync(path.join(cudaBins, name), path.join(release, name));
  }
  symlinkSync(fallback, path.join(release, "libggml-cuda.so"));
  writeFileSync(path.join(folder, "buildDone.status"), "");
  return folder;
}

function runCheck(folder: string, architectures: string) {
  return spawnSync(process.execPath, [checkScript, folder, architectures, baseFile], {
    encoding: "utf8",
  });
}

describe("CUDA libraries of the image", { skip }, () => {
  it("the data file describes the runtime base Dockerfile.gpu builds on", () => {
    const dockerfile = readFileSync(path.join(root, "Dockerfile.gpu"), "utf8");
    const image = /^ARG CUDA_IMAGE=(\S+)$/m.exec(dockerfile)?.[1];
    assert.equal(image, base.image);
    assert.match(image ?? "", new RegExp(`^nvidia/cuda:${base.cudaMajor}\\.`));
  });

  it("reads the GPU code of node-llama-cpp's prebuilt CUDA builds as their CMake lists say", () => {
    // llama/CMakeLists.txt (CI mode, CUDA 12): 50/61/70/75/80-virtual and 86-real (89-real and
    // 90-virtual removed for size). ggml-cuda's own list for CUDA 13: 75/80-virtual, 86-real,
    // 89-real, 90-virtual, 120a/121a-real.
    assert.deepEqual(check.fatbinArchitectures(fallback), {
      sass: [86],
      ptx: [50, 61, 70, 75, 80],
    });
    assert.deepEqual(check.fatbinArchitectures(cuda13), {
      sass: [86, 89, 120, 121],
      ptx: [75, 80, 90],
    });
    assert.equal(check.fatbinArchitectures(path.join(cpuBins, "llama-addon.node")), undefined);
  });

  it("the CUDA 12 prebuilt links against the base; the CUDA 13 one needs what it lacks", () => {
    const cuda12 = [...binariesIn(cudaBins, ["libggml-cuda.so"]), fallback];
    assert.deepEqual(check.linkProblems(cuda12, new Set(readdirSync(cudaBins)), base), []);
    const needs = check.neededLibraries(fallback);
    assert.ok(needs.includes(`libcudart.so.${base.cudaMajor}`), needs.join(" "));
    assert.ok(needs.includes(`libcublas.so.${base.cudaMajor}`), needs.join(" "));
    const refused = check.linkProblems([cuda13], new Set(readdirSync(cudaBins)), base);
    assert.ok(
      refused.some((problem) => problem.includes("libcudart.so.13")),
      refused.join("\n"),
    );
  });

  it("the prebuilt CPU build the image keeps links against the base", () => {
    assert.deepEqual(
      check.linkProblems(binariesIn(cpuBins), new Set(readdirSync(cpuBins)), base),
      [],
    );
  });

  it("the image's check passes a complete build of the architectures asked, and no other", () => {
    const folder = prebuiltAsLocalBuild();
    const passed = runCheck(
      folder,
      "50-virtual;61-virtual;70-virtual;75-virtual;80-virtual;86-real",
    );
    assert.equal(passed.status, 0, passed.stderr);
    assert.match(passed.stdout, /SASS for sm_86; PTX for compute_50, compute_61, compute_70/);
    // The image's list: this build lacks its SASS for sm_80, 89, 90 and its compute_90 PTX.
    const dockerfile = readFileSync(path.join(root, "Dockerfile.gpu"), "utf8");
    const imageList = /^ARG CUDA_ARCHITECTURES="([^"]+)"$/m.exec(dockerfile)?.[1] ?? "";
    const refused = runCheck(folder, imageList);
    assert.equal(refused.status, 1);
    assert.match(refused.stderr, /SASS for \[86\], not \[80, 86, 89, 90\]/);
    assert.match(refused.stderr, /PTX for \[50, 61, 70, 75, 80\], not \[90\]/);
    // A build that did not finish: node-llama-cpp would not load it.
    rmSync(path.join(folder, "buildDone.status"));
    const unfinished = runCheck(folder, imageList);
    assert.equal(unfinished.status, 1);
    assert.match(unfinished.stderr, /buildDone\.status is missing/);
  });
});
