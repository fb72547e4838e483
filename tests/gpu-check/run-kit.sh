#!/usr/bin/env bash
# The GPU check kit's entry script (packed as .gpu-check-kit/run.sh by `npm run gpu-check:pack`).
# On a machine with no Node.js, no npm and no network: unpacks Node, the project's built output
# and production dependencies, llama.cpp's source and a redis-server; builds node-llama-cpp's
# backend from that source for the present GPU with every core, while the project's GGUF writer
# generates the two test models; then runs the check (tests/gpu-check/gpu-check.ts) and leaves
# gpu-check.json, gpu-check.md, stack.log, build.log and run.log in $OUT.
#
#   bash .gpu-check-kit/run.sh                         # on the GPU machine: CUDA, the ~1B model
#   bash .gpu-check-kit/run.sh --gpu off --big small   # dry run on a CPU: every step but the GPU
#
# Options:
#   --gpu cuda|off        the backend to build and use (default cuda)
#   --big 1b|small        the big model: ~1.1B parameters, or ~57M for dry runs on a CPU (default 1b)
#   --work DIR            a folder under /tmp, emptied first (default /tmp/gpu-check)
#   --jobs N              build jobs (default: every core)
#   --runs N              rounds of each measure (default 3)
#   --llama-threads N     llama.cpp CPU threads per model (default 4 with cuda, 1 without)
#   --time-limit SECONDS  the whole run's limit (default 560; the device tool stops a run at 600)
#   --cmake KEY=VALUE     an extra cmake option for llama.cpp (repeatable), e.g. GGML_CUDA_FA=OFF
#                         to build quicker without the FlashAttention kernels; it comes after the
#                         image's own (GGML_NATIVE=OFF GGML_OPENMP=OFF), which the backend is
#                         built with as in the image (Dockerfile.gpu's LLAMA_BUILD_CMAKE_OPTIONS)
#   --reuse-build         keep the backend an earlier run built in --work (to iterate on the check)
# Fails at the first step that breaks, naming it.
set -euo pipefail

# The whole script is one function, read before any of it runs: a kit repacked while this runs
# (which rewrites this file) cannot change the commands under its feet.
main() {

kit="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
gpu=cuda
big=1b
work=/tmp/gpu-check
jobs="$(nproc)"
runs=3
llama_threads=""
time_limit=560
# The image's options: CPU code for any x86-64 with AVX2, not -march=native, and ggml's own thread
# pool instead of OpenMP. (Native code died of SIGILL in a dry run on the development VM, whose CPU
# advertises AMX: ggml's AMX kernel, `tileloadd`, on the first long prompt.)
cmake_options="GGML_NATIVE=OFF GGML_OPENMP=OFF"
reuse_build=0
while [ $# -gt 0 ]; do
  case "$1" in
    --gpu) gpu="$2"; shift 2 ;;
    --big) big="$2"; shift 2 ;;
    --work) work="$2"; shift 2 ;;
    --jobs) jobs="$2"; shift 2 ;;
    --runs) runs="$2"; shift 2 ;;
    --llama-threads) llama_threads="$2"; shift 2 ;;
    --time-limit) time_limit="$2"; shift 2 ;;
    --cmake) cmake_options="$cmake_options $2"; shift 2 ;;
    --reuse-build) reuse_build=1; shift ;;
    *) echo "run.sh: unknown option $1" >&2; exit 2 ;;
  esac
done
case "$gpu" in cuda|off) ;; *) echo "run.sh: --gpu must be cuda or off" >&2; exit 2 ;; esac
case "$big" in 1b|small) ;; *) echo "run.sh: --big must be 1b or small" >&2; exit 2 ;; esac
case "$work" in /tmp/?*|/var/tmp/?*) ;; *) echo "run.sh: --work must be a folder under /tmp" >&2; exit 2 ;; esac
[ -n "$llama_threads" ] || llama_threads=$([ "$gpu" = cuda ] && echo 4 || echo 1)

out="${OUT:-$kit/out}"
mkdir -p "$out"
exec > >(tee -a "$out/run.log") 2>&1

started=$(date +%s)
steps="$work/steps.tsv"
step_start=0
current=""
begin() {
  current="$1"
  step_start=$(date +%s.%N)
  echo "[run.sh] $(date -u +%H:%M:%S) step: $current"
}
end() {
  local seconds
  seconds=$(awk -v a="$step_start" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
  printf '%s\t%s\n' "$current" "$seconds" >> "$steps"
  echo "[run.sh] $(date -u +%H:%M:%S) step done: $current (${seconds} s)"
}
die() {
  echo "GPU CHECK FAILED at step \"$current\": $*" >&2
  exit 1
}
left() { echo $(( time_limit - ($(date +%s) - started) )); }

begin "tools"
need=(tar xz cmake g++)
[ "$gpu" = cuda ] && need+=(nvidia-smi)
if [ "$gpu" = cuda ] && ! command -v nvcc >/dev/null && [ -x /usr/local/cuda/bin/nvcc ]; then
  export PATH="/usr/local/cuda/bin:$PATH"
fi
[ "$gpu" = cuda ] && need+=(nvcc)
for tool in "${need[@]}"; do
  command -v "$tool" >/dev/null || die "$tool is not installed here"
done
command -v ninja >/dev/null || command -v make >/dev/null || die "neither ninja nor make is installed"
for file in node.xz app.tar.xz llama.cpp.tar.xz redis.tar.xz npm-shim.sh; do
  [ -f "$kit/$file" ] || die "the kit lacks $file: pack it again (npm run gpu-check:pack)"
done
echo "cores: $(nproc); cmake: $(cmake --version | head -1)"
if [ "$gpu" = cuda ]; then
  nvidia-smi --query-gpu=name,driver_version,compute_cap,memory.total --format=csv,noheader
  nvcc --version | tail -2
  cap=$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader | head -1 | tr -d ' .')
  [ -n "$cap" ] || die "nvidia-smi reported no compute capability"
  export LLAMA_BUILD_CUDA_ARCHITECTURES="${cap}-real"
  cuda_lib="$(dirname "$(dirname "$(command -v nvcc)")")/lib64"
  [ -d "$cuda_lib" ] && export LD_LIBRARY_PATH="$cuda_lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
fi
app="$work/app"
built=$(ls -d "$app"/node_modules/node-llama-cpp/llama/localBuilds/*/buildDone.status 2>/dev/null | head -1 || true)
if [ "$reuse_build" = 1 ] && [ -n "$built" ]; then
  echo "reusing the backend built earlier: $(dirname "$built")"
  rm -rf "$work/models" "$work/redis" "$work/bin" "$steps"
else
  reuse_build=0
  rm -rf "$work"
fi
mkdir -p "$work/bin" "$app" "$work/redis" "$work/models"
end

begin "unpack"
xz -dc "$kit/node.xz" > "$work/bin/node"
chmod +x "$work/bin/node"
tar -xJf "$kit/app.tar.xz" -C "$app"
llama_src="$app/node_modules/node-llama-cpp/llama/llama.cpp"
mkdir -p "$llama_src/.git" # node-llama-cpp counts the source as cloned when .git exists
[ "$reuse_build" = 1 ] || tar -xJf "$kit/llama.cpp.tar.xz" -C "$llama_src"
tar -xJf "$kit/redis.tar.xz" -C "$work/redis"
# redis-server runs through the loader and libraries it was packed with, whatever the host has.
redis="$work/redis"
printf '#!/bin/sh\nexec "%s/lib/ld-linux-x86-64.so.2" --library-path "%s/lib" "%s/redis-server" "$@"\n' \
  "$redis" "$redis" "$redis" > "$work/bin/redis-server"
install -m 755 "$kit/npm-shim.sh" "$work/bin/npm"
chmod +x "$work/bin/redis-server"
export PATH="$work/bin:$PATH"
echo "node $(node --version); $(redis-server --version)"
end

begin "models (in the background)"
(cd "$app" && node --enable-source-maps dist/tests/gpu-check/gpu-check.js write-models \
  --models "$work/models" --big "$big") > "$work/models.log" 2>&1 &
models_pid=$!
end

if [ "$reuse_build" = 1 ]; then
  begin "build backend (reused)"
else
  begin "build backend ($gpu, $jobs jobs)"
  unset CI # node-llama-cpp reads CI as a boolean and throws on any other value
  build_gpu=$([ "$gpu" = cuda ] && echo cuda || echo false)
  # The npm shim (docker/npm-shim.sh, as in the image's cuda-build stage) runs cmake-js.
  if ! (cd "$app" && LLAMA_BUILD_APP="$app" LLAMA_BUILD_JOBS="$jobs" \
    LLAMA_BUILD_CMAKE_OPTIONS="$cmake_options" timeout "$(left)" \
    node node_modules/node-llama-cpp/dist/cli/cli.js source build --gpu "$build_gpu" \
    --noUsageExample) > "$out/build.log" 2>&1; then
    tail -n 40 "$out/build.log"
    die "building node-llama-cpp's backend failed (whole log: build.log)"
  fi
fi
ls "$app/node_modules/node-llama-cpp/llama/localBuilds"
end

begin "models"
wait "$models_pid" || { cat "$work/models.log"; die "writing the models failed"; }
cat "$work/models.log"
end

begin "check"
[ "$(left)" -gt 30 ] || die "no time left for the check ($(left) s)"
(cd "$app" && timeout "$(left)" node --enable-source-maps dist/tests/gpu-check/gpu-check.js run \
  --models "$work/models" --gpu "$gpu" --out "$out" --runs "$runs" \
  --llama-threads "$llama_threads" --shell-steps "$steps") || die "see the lines above and gpu-check.md"
end
echo "[run.sh] GPU check passed in $(( $(date +%s) - started )) s; reports in $out"
}

main "$@"
exit
