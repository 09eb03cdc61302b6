#!/usr/bin/env bash
# scripts/cuda_check.sh [OUT_DIR] [DEB_DIR]: on a CUDA machine, in the repository root: builds llama-mm against
# the installed PyTorch 2.x (without FFmpeg/OpenCV, -DLLAMA_MM_MEDIA=OFF, when they are missing), runs the *_CUDA
# tests, the GPU benchmarks (8B decode against the copy bandwidth, 11B-Vision caption, adapter training MFU, 1B
# decode), then the CPU suites on PyTorch 2.x, each within a time box so that the whole fits in ~10 minutes.
# Logs go to OUT_DIR (default cuda-check/): run.txt, configure.txt, build.txt, tests.txt, gen8b.json.
# DEB_DIR (default .gpu): the packages scripts/gpu_deps.sh fetched, for a machine that lacks them.
T0=$(date +%s)
el() { echo "[t=$(($(date +%s) - T0))s] $*"; }
out=$(mkdir -p "${1:-cuda-check}" && cd "${1:-cuda-check}" && pwd)
debs=${2:-.gpu}
exec > >(tee "$out/run.txt") 2>&1
deps=/tmp/llama-mm-deps
mkdir -p $deps
for f in "$debs"/*.deb; do [ -e "$f" ] && dpkg -x "$f" $deps; done
pc=$deps/usr/lib/x86_64-linux-gnu/pkgconfig
[ -d $pc ] && sed -i "s|^prefix=/usr|prefix=$deps/usr|; /^Requires.private/d" $pc/*.pc
export PKG_CONFIG_PATH=$pc LD_LIBRARY_PATH=$deps/usr/lib/x86_64-linux-gnu${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
torch_prefix=$(python3 -c 'import torch;print(torch.utils.cmake_prefix_path)')
media=ON
pkg-config --exists libavformat libavcodec libswscale libswresample && [ -e /usr/include/opencv4 ] || media=OFF
el "configure (LLAMA_MM_MEDIA=$media)"
cmake -S . -B build-cuda -G Ninja -DCMAKE_BUILD_TYPE=Release -DLLAMA_MM_MEDIA=$media \
  -DCMAKE_PREFIX_PATH="$torch_prefix;$deps/usr" -DCMAKE_POLICY_VERSION_MINIMUM=3.5 -DTORCH_CUDA_ARCH_LIST=9.0 \
  -DCUDAToolkit_ROOT=/usr/local/cuda >"$out/configure.txt" 2>&1 || {
  tail -40 "$out/configure.txt"
  exit 1
}
el "build: the CLI and the suites with CUDA tests"
timeout 330 ninja -C build-cuda -k 0 llama-mm llm_tests adapters_tests >"$out/build.txt" 2>&1
echo "build rc=$?"
grep -E 'error|FAILED' "$out/build.txt" | head -40
el "CUDA tests"
for t in llm adapters; do
  [ -x build-cuda/tests/${t}_tests ] && timeout 120 build-cuda/tests/${t}_tests --gtest_filter='*_CUDA' 2>&1 | tail -25
done
cli=build-cuda/cli/llama-mm
if [ -x $cli ]; then
  el "bench generate --preset 8b"
  timeout 120 $cli bench generate --preset 8b --device cuda -p 512 -n 128 --batch 8 --json >"$out/gen8b.json" 2>/tmp/gen8b.err
  echo "rc=$?"
  cat "$out/gen8b.json"
  tail -3 /tmp/gen8b.err
  el "bench caption --preset 11b"
  timeout 90 $cli bench caption --preset 11b --device cuda --tiles 4 -p 64 -n 128 2>&1 | grep -v '^bench:'
  el "bench train --preset paper-8b"
  timeout 150 $cli bench train --preset paper-8b --batch 4 --seq 128 --steps 3 2>&1 | grep -v '^bench: step'
  el "bench generate --preset 1b"
  timeout 45 $cli bench generate --preset 1b --device cuda -p 512 -n 128 --batch 8 2>&1 | grep -v '^bench:'
  nvidia-smi --query-gpu=name,memory.used --format=csv
fi
el "build the rest"
timeout $((480 - ($(date +%s) - T0))) ninja -C build-cuda -k 0 >>"$out/build.txt" 2>&1
echo "build rc=$?"
el "CPU suites on PyTorch 2.x"
for t in llm encoders adapters train serve cli; do
  left=$((575 - ($(date +%s) - T0)))
  [ $left -lt 10 ] && break
  [ -x build-cuda/tests/${t}_tests ] && (
    timeout $left build-cuda/tests/${t}_tests --gtest_brief=1 >/tmp/llama-mm-test-$t.txt 2>&1
    echo "$t rc=$?"
    grep -E '^\[  (FAILED|PASSED)' /tmp/llama-mm-test-$t.txt | head -30
  ) &
done
wait
cat /tmp/llama-mm-test-*.txt >"$out/tests.txt" 2>/dev/null
el done
