/**
 * The GPU architectures the image's CUDA backend is compiled for: one list, Dockerfile.gpu's
 * `ARG CUDA_ARCHITECTURES`, that gives machine code to every GPU generation RunPod's serverless
 * GPUs are (sm_80 A100, sm_86 Ampere, sm_89 Ada, sm_90 Hopper) and PTX for newer ones; it reaches
 * the compiler through the npm shim and the check after the build, and nothing else in the
 * Dockerfile names architectures. Where a CUDA compiler is installed, CMake and nvcc compile a
 * kernel with the list, and the result holds exactly that GPU code.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { describe, it } from "node:test";
import { pathToFileURL } from "node:url";
import { packageRoot } from "../../shared/paths.js";

interface Architectures {
  sass: number[];
  ptx: number[];
}
const root = packageRoot();
const read = (file: string) => readFileSync(path.join(root, file), "utf8");
const dockerfile = read("Dockerfile.gpu");
const { fatbinArchitectures, parseCudaArchitectures } = (await import(
  pathToFileURL(path.join(root, "docker", "check-cuda-build.mjs")).href
)) as {
  fatbinArchitectures(file: string): Architectures | undefined;
  parseCudaArchitectures(list: string): Architectures;
};

/** The Dockerfile's instructions (continuations joined), without comments. */
const instructions = dockerfile
  .replace(/\\\n(\s*#.*\n)*/g, " ")
  .split("\n")
  .filter((line) => line.trim() !== "" && !line.trimStart().startsWith("#"));
const list = /^ARG CUDA_ARCHITECTURES="([^"]+)"$/m.exec(dockerfile)?.[1] ?? "";

/** The instructions of the stage named `name`. */
function stage(name: string): string[] {
  const start = instructions.findIndex((line) => line.endsWith(` AS ${name}`));
  assert.ok(start >= 0, `no stage ${name}`);
  const end = instructions.findIndex((line, index) => index > start && line.startsWith("FROM "));
  return instructions.slice(start + 1, end < 0 ? undefined : end);
}

/** nvcc, where a CUDA toolkit is installed (there is none on the development machine). */
const nvcc = ["nvcc", "/usr/local/cuda/bin/nvcc"].find(
  (command) => spawnSync(command, ["--version"], { stdio: "ignore" }).status === 0,
);

describe("the image's CUDA architectures", () => {
  it("machine code for sm_80, 86, 89 and 90; PTX for compute_90 and none older", () => {
    assert.deepEqual(parseCudaArchitectures(list), { sass: [80, 86, 89, 90], ptx: [90] });
  });

  it("are written once, in the ARG, and reach the build and the check from it", () => {
    const named = instructions.filter((line) => /\b\d{2,3}[af]?-(real|virtual)\b/.test(line));
    assert.deepEqual(named, [`ARG CUDA_ARCHITECTURES="${list}"`]);
    const build = stage("cuda-build");
    assert.ok(build.includes("ARG CUDA_ARCHITECTURES"), "the stage takes the global ARG");
    // The shim turns LLAMA_BUILD_CUDA_ARCHITECTURES into CMAKE_CUDA_ARCHITECTURES.
    assert.ok(
      build.some((line) =>
        /^ENV .*\bLLAMA_BUILD_CUDA_ARCHITECTURES=\$\{CUDA_ARCHITECTURES\}/.test(line),
      ),
      build.join("\n"),
    );
    assert.ok(
      build.some((line) => /check-cuda-build\.mjs \S+ "\$CUDA_ARCHITECTURES"/.test(line)),
      "the check after the build compares the result with the same list",
    );
  });

  it("the build and the runtime share their CUDA release and Ubuntu release", () => {
    const image = (name: string) => new RegExp(`^ARG ${name}=(\\S+)$`, "m").exec(dockerfile)?.[1];
    const devel = /^nvidia\/cuda:([\d.]+)-devel-(ubuntu[\d.]+)$/.exec(
      image("CUDA_DEVEL_IMAGE") ?? "",
    );
    const runtime = /^nvidia\/cuda:([\d.]+)-runtime-(ubuntu[\d.]+)$/.exec(
      image("CUDA_IMAGE") ?? "",
    );
    assert.ok(devel !== null && runtime !== null, "both are nvidia/cuda devel and runtime tags");
    // The same toolkit as the runtime's libraries; the same OS, or node-llama-cpp tests the
    // local build in a child process before each load.
    assert.equal(devel[1], runtime[1]);
    assert.equal(devel[2], runtime[2]);
    assert.match(stage("cuda-build")[0] ?? "", /^ARG CUDA_ARCHITECTURES$/);
    assert.match(
      instructions.find((line) => line.endsWith(" AS cuda-build")) ?? "",
      /^FROM \$\{CUDA_DEVEL_IMAGE\} /,
    );
  });

  it("the image and the GPU check kit drive the npm shim by the variables it reads", () => {
    const shim = read("docker/npm-shim.sh");
    const reads = new Set([...shim.matchAll(/\$\{(LLAMA_BUILD_\w+)/g)].map((m) => m[1]));
    const set = [
      ...[...read("tests/gpu-check/run-kit.sh").matchAll(/\b(LLAMA_BUILD_\w+)=/g)],
      ...[
        ...stage("cuda-build")
          .join("\n")
          .matchAll(/\b(LLAMA_BUILD_\w+)=/g),
      ],
    ].map((m) => m[1]);
    assert.ok(set.length >= 6, set.join(" "));
    for (const name of set)
      assert.ok(reads.has(name), `${name} is set, but the shim never reads it`);
    assert.ok(dockerfile.includes("COPY --chmod=755 docker/npm-shim.sh /usr/local/bin/npm"));
    // The kit builds with the image's cmake options (its --cmake options come after them).
    const imageOptions = /LLAMA_BUILD_CMAKE_OPTIONS="([^"]+)"/.exec(stage("cuda-build").join("\n"));
    const kitOptions = /^cmake_options="([^"]+)"$/m.exec(read("tests/gpu-check/run-kit.sh"));
    assert.ok(imageOptions !== null && kitOptions !== null);
    assert.equal(kitOptions[1], imageOptions[1]);
    assert.match(read("tests/gpu-check/pack-kit.ts"), /"docker", "npm-shim\.sh"/);
  });

  it("CMake and nvcc compile a kernel with the list into exactly that GPU code", {
    skip: nvcc === undefined ? "no CUDA compiler here" : false,
    timeout: 300_000,
  }, () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), "llmpool-cuda-arch-"));
    try {
      writeFileSync(
        path.join(dir, "CMakeLists.txt"),
        "cmake_minimum_required(VERSION 3.18)\nproject(arch LANGUAGES CXX CUDA)\nadd_library(arch SHARED kernel.cu)\n",
      );
      writeFileSync(
        path.join(dir, "kernel.cu"),
        '__global__ void twice(float *x) { x[threadIdx.x] *= 2.0f; }\nextern "C" void launch(float *x) { twice<<<1, 32>>>(x); }\n',
      );
      const env = { ...process.env, CUDACXX: nvcc ?? "" };
      for (const args of [
        ["-S", dir, "-B", path.join(dir, "build"), `-DCMAKE_CUDA_ARCHITECTURES=${list}`],
        ["--build", path.join(dir, "build")],
      ]) {
        const result = spawnSync("cmake", args, { env, encoding: "utf8" });
        assert.equal(
          result.status,
          0,
          `cmake ${args.join(" ")}:\n${result.stdout}\n${result.stderr}`,
        );
      }
      const library = path.join(dir, "build", "libarch.so");
      assert.ok(existsSync(library));
      assert.deepEqual(fatbinArchitectures(library), parseCudaArchitectures(list));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
