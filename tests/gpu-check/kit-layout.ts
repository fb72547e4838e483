/**
 * What the GPU check kit holds and how the device tool runs it: shared by the packer, which
 * makes the kit, and the test that keeps the packer, the entry script and the tool's limits in
 * agreement.
 */

/** The kit's folder under the repository root; `.gitignore` ignores it, so it travels as `carry`. */
export const KIT_DIR = ".gpu-check-kit";

/** The files the kit holds; the entry script checks for the same list before it starts. */
export const KIT_FILES = [
  "run.sh",
  "npm-shim.sh",
  "node.xz",
  "app.tar.xz",
  "llama.cpp.tar.xz",
  "redis.tar.xz",
  "manifest.json",
] as const;

/** The device tool's limits (/work/.library/device/README.md). */
export const DEVICE_LIMITS = {
  /** What travels: the repository's tracked and untracked-not-ignored files plus `carry`. */
  travelBytes: 64 * 2 ** 20,
  commandChars: 2000,
  carryPaths: 8,
  timeoutS: 600,
} as const;

/**
 * The parts of llama.cpp's source a node-llama-cpp build compiles (its CMakeLists adds
 * llama.cpp with `LLAMA_BUILD_COMMON` and nothing of tools, tests, examples, models or docs).
 */
export const LLAMA_CPP_SOURCE_PATHS = [
  "CMakeLists.txt",
  "LICENSE",
  "licenses",
  "cmake",
  "common",
  "ggml",
  "include",
  "src",
  "vendor",
] as const;

/**
 * Production dependencies that stay behind: node-llama-cpp's prebuilt binaries (the kit builds
 * its own backend; the CUDA one alone is 159 MB) and TypeScript (an optional peer dependency of
 * node-llama-cpp that nothing loads at run time).
 */
export const LEFT_BEHIND_PACKAGES = [
  /^node_modules\/@node-llama-cpp\//,
  /^node_modules\/typescript$/,
];

/** Inside the kept packages, files nothing runs: source maps and type declarations. */
export const LEFT_BEHIND_FILES = [
  "node_modules/*.map",
  "node_modules/*.d.ts",
  "node_modules/*.d.mts",
  "node_modules/*.d.cts",
  "node_modules/node-llama-cpp/llama/gitRelease.bundle",
  "node_modules/node-llama-cpp/llama/llama.cpp",
  "node_modules/node-llama-cpp/llama/localBuilds",
  "node_modules/node-llama-cpp/llama/lastBuild.json",
];

export interface DeviceCall {
  command: string;
  carry: string[];
  timeout_s: number;
}

/** The device tool call that runs the kit on the GPU machine (the repository root is its cwd). */
export function deviceCall(kitDir: string = KIT_DIR): DeviceCall {
  return {
    command: `bash ${kitDir}/run.sh --gpu cuda --big 1b`,
    carry: [kitDir],
    timeout_s: DEVICE_LIMITS.timeoutS,
  };
}
