/**
 * The image keeps node-llama-cpp's CUDA 12 backend on a CUDA 12 base (see Dockerfile.gpu). Without
 * a Docker engine or a GPU here, what can be checked is the linking: every NEEDED library of every
 * binary the image keeps is a file beside it, a library of the base image (written down with its
 * sources in docker/cuda-base-libraries.json), or a driver library the NVIDIA Container Toolkit
 * mounts; and no binary needs newer glibc/libstdc++ symbol versions than the base has. Needs
 * `readelf` (binutils) and the linux-x64 CUDA packages that `npm ci` installs on linux x64.
 */
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { describe, it } from "node:test";
import { packageRoot } from "../../shared/paths.js";

interface BaseLibraries {
  image: string;
  cudaMajor: number;
  packages: Record<string, string[]>;
  system: Record<string, string[]>;
  hostDriver: string[];
  symbolVersions: Record<string, string>;
}

const root = packageRoot();
const base = JSON.parse(
  readFileSync(path.join(root, "docker", "cuda-base-libraries.json"), "utf8"),
) as BaseLibraries;
const scope = path.join(root, "node_modules", "@node-llama-cpp");
const cudaBins = path.join(scope, "linux-x64-cuda", "bins", "linux-x64-cuda");
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
  : !existsSync(fallback)
    ? "@node-llama-cpp/linux-x64-cuda-ext is not installed (not linux x64)"
    : false;

function needed(file: string): string[] {
  const text = execFileSync("readelf", ["-d", "-W", file], { encoding: "utf8" });
  return [...text.matchAll(/\(NEEDED\)\s+Shared library: \[([^\]]+)\]/g)].map((m) => m[1] ?? "");
}

/** The highest version this binary needs of each symbol family (GLIBC_2.34 → GLIBC: 2.34). */
function versionNeeds(file: string): Map<string, string> {
  const text = execFileSync("readelf", ["-V", "-W", file], { encoding: "utf8" });
  const highest = new Map<string, string>();
  for (const match of text.matchAll(/Name: (GLIBC|GLIBCXX|CXXABI|GCC)_([\d.]+)/g)) {
    const [family, version] = [match[1] ?? "", match[2] ?? ""];
    const current = highest.get(family);
    if (current === undefined || compareVersions(version, current) > 0) {
      highest.set(family, version);
    }
  }
  return highest;
}

function compareVersions(a: string, b: string): number {
  const [x, y] = [a.split(".").map(Number), b.split(".").map(Number)];
  for (let i = 0; i < Math.max(x.length, y.length); i++) {
    const difference = (x[i] ?? 0) - (y[i] ?? 0);
    if (difference !== 0) return difference;
  }
  return 0;
}

/** The binaries scripts/prune-llama-binaries.mjs keeps for the CUDA backend. */
function keptCudaBinaries(): string[] {
  const files = readdirSync(cudaBins)
    .filter((name) => /\.(so|node)$/.test(name) && name !== "libggml-cuda.so")
    .map((name) => path.join(cudaBins, name));
  return [...files, fallback];
}

describe("CUDA libraries of the image", { skip }, () => {
  const provided = new Set([
    ...Object.values(base.packages).flat(),
    ...Object.values(base.system).flat(),
    ...base.hostDriver,
  ]);

  it("the data file describes the base image Dockerfile.gpu builds on", () => {
    const dockerfile = readFileSync(path.join(root, "Dockerfile.gpu"), "utf8");
    const image = /^ARG CUDA_IMAGE=(\S+)$/m.exec(dockerfile)?.[1];
    assert.equal(image, base.image);
    assert.match(image ?? "", new RegExp(`^nvidia/cuda:${base.cudaMajor}\\.`));
  });

  it("the kept CUDA backend is the CUDA 12 build", () => {
    const libraries = needed(fallback);
    assert.ok(libraries.includes(`libcudart.so.${base.cudaMajor}`), libraries.join(" "));
    assert.ok(libraries.includes(`libcublas.so.${base.cudaMajor}`), libraries.join(" "));
  });

  it("every NEEDED library of every kept binary is beside it, in the base, or the driver's", () => {
    const beside = new Set(readdirSync(cudaBins));
    const missing: string[] = [];
    for (const file of keptCudaBinaries()) {
      for (const library of needed(file)) {
        if (!beside.has(library) && !provided.has(library)) {
          missing.push(`${path.relative(scope, file)} needs ${library}`);
        }
      }
    }
    assert.deepEqual(missing, []);
  });

  it("no kept binary needs newer glibc or libstdc++ symbols than the base has", () => {
    const tooNew: string[] = [];
    for (const file of keptCudaBinaries()) {
      for (const [family, version] of versionNeeds(file)) {
        const limit = base.symbolVersions[family];
        if (limit === undefined || compareVersions(version, limit) > 0) {
          tooNew.push(`${path.relative(scope, file)} needs ${family}_${version} (base: ${limit})`);
        }
      }
    }
    assert.deepEqual(tooNew, []);
  });

  it("the CUDA 13 build the image drops could not load on this base", {
    skip: !existsSync(cuda13),
  }, () => {
    const unmet = needed(cuda13).filter((library) => !provided.has(library));
    assert.ok(
      unmet.includes("libcudart.so.13"),
      `expected libcudart.so.13 to be missing from the base, unmet: ${unmet.join(" ")}`,
    );
  });
});
