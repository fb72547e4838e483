#!/usr/bin/env bash
# Stands in for `npm` on a machine that has none. node-llama-cpp's source build makes exactly one
# kind of npm call, `npm run -s cmake-js-llama -- ARGS` (its package script `cd llama && cmake-js`),
# so this runs cmake-js from the kit's node_modules instead. Two changes on the way:
# - `--parallel=N` becomes `--parallel=$GPU_CHECK_BUILD_JOBS` (node-llama-cpp leaves 2 cores idle);
# - `GPU_CHECK_CUDA_ARCHITECTURES`, when set, becomes `--CDCMAKE_CUDA_ARCHITECTURES=...`, so CUDA
#   code is built for the present GPU only, without a custom cmake option that would change the
#   name of node-llama-cpp's local build folder (and hide the build from `getLlama`);
# - each `KEY=VALUE` of `GPU_CHECK_CMAKE_OPTIONS` (space-separated) becomes `--CDKEY=VALUE`, for the
#   same reason (e.g. `GGML_CUDA_FA=OFF` for a quicker build).
set -euo pipefail
if [ "${1:-} ${2:-} ${3:-} ${4:-}" != "run -s cmake-js-llama --" ]; then
  echo "gpu-check npm shim: unsupported npm call: npm $*" >&2
  exit 1
fi
shift 4
: "${GPU_CHECK_APP:?GPU_CHECK_APP must name the app folder of the kit}"
args=()
is_compile=0
for arg in "$@"; do
  case "$arg" in
    --parallel=*) args+=("--parallel=${GPU_CHECK_BUILD_JOBS:-$(nproc)}") ;;
    *) args+=("$arg") ;;
  esac
  [ "$arg" = compile ] && is_compile=1
done
if [ "$is_compile" = 1 ] && [ -n "${GPU_CHECK_CUDA_ARCHITECTURES:-}" ]; then
  args+=("--CDCMAKE_CUDA_ARCHITECTURES=${GPU_CHECK_CUDA_ARCHITECTURES}")
fi
if [ "$is_compile" = 1 ]; then
  for option in ${GPU_CHECK_CMAKE_OPTIONS:-}; do args+=("--CD$option"); done
fi
cd "$GPU_CHECK_APP/node_modules/node-llama-cpp/llama"
exec node "$GPU_CHECK_APP/node_modules/cmake-js/bin/cmake-js" "${args[@]}"
