#!/usr/bin/env bash
# Stands in for `npm` where node-llama-cpp's CUDA backend is built from its bundled llama.cpp
# source: in the image's cuda-build stage (Dockerfile.gpu) and on the GPU check's lent machine
# (tests/gpu-check/run-kit.sh), which has no npm at all. node-llama-cpp's source build makes one
# kind of npm call, `npm run -s cmake-js-llama -- ARGS` (its package script `cd llama && cmake-js`),
# twice (`clean`, then `compile`), so this runs cmake-js from the app's node_modules instead, with
# these changes to the compile call:
# - `--parallel=N` becomes `--parallel=$LLAMA_BUILD_JOBS` (default: every core; node-llama-cpp
#   leaves 2 cores idle);
# - `LLAMA_BUILD_CUDA_ARCHITECTURES`, when set, becomes `--CDCMAKE_CUDA_ARCHITECTURES=...`;
# - each `KEY=VALUE` of `LLAMA_BUILD_CMAKE_OPTIONS` (space-separated) becomes `--CDKEY=VALUE`, after
#   node-llama-cpp's own (cmake-js keeps the last value of a key, so `GGML_NATIVE=OFF` wins over
#   the `GGML_NATIVE=ON` node-llama-cpp passes for a build on the machine that runs it).
# Passed this way, as plain cmake defines, these options leave the build folder's name alone:
# node-llama-cpp names a local build folder after its custom cmake options (`NODE_LLAMA_CPP_CMAKE_
# OPTION_*`, `getLlama({cmakeOptions})`), and `getLlama({build: "never", gpu: "cuda"})` looks only
# in `localBuilds/linux-x64-cuda`, the folder of a build without any.
#
# `LLAMA_BUILD_APP` names the folder whose node_modules holds node-llama-cpp and cmake-js.
# `LLAMA_BUILD_PRINT_ONLY=1` prints each cmake-js command line (`cmake-js ARGS`, one line) instead
# of running it: tests/e2e/image-steps.test.ts reads what the image's build would run, where no
# CUDA compiler is; node-llama-cpp then fails, finding no build output.
set -euo pipefail
if [ "${1:-} ${2:-} ${3:-} ${4:-}" != "run -s cmake-js-llama --" ]; then
  echo "npm shim: unsupported npm call: npm $*" >&2
  exit 1
fi
shift 4
: "${LLAMA_BUILD_APP:?LLAMA_BUILD_APP must name the folder that holds node_modules}"
args=()
is_compile=0
for arg in "$@"; do
  case "$arg" in
    --parallel=*) args+=("--parallel=${LLAMA_BUILD_JOBS:-$(nproc)}") ;;
    *) args+=("$arg") ;;
  esac
  [ "$arg" = compile ] && is_compile=1
done
if [ "$is_compile" = 1 ] && [ -n "${LLAMA_BUILD_CUDA_ARCHITECTURES:-}" ]; then
  args+=("--CDCMAKE_CUDA_ARCHITECTURES=${LLAMA_BUILD_CUDA_ARCHITECTURES}")
fi
if [ "$is_compile" = 1 ]; then
  for option in ${LLAMA_BUILD_CMAKE_OPTIONS:-}; do args+=("--CD$option"); done
fi
cd "$LLAMA_BUILD_APP/node_modules/node-llama-cpp/llama"
if [ "${LLAMA_BUILD_PRINT_ONLY:-}" = 1 ]; then
  echo "cmake-js ${args[*]}"
  exit 0
fi
exec node "$LLAMA_BUILD_APP/node_modules/cmake-js/bin/cmake-js" "${args[@]}"
