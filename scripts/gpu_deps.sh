#!/usr/bin/env bash
# scripts/gpu_deps.sh [DIR]: fetches, on a Debian 12 machine with network access, the .deb files a CUDA build
# needs on a GPU machine that has PyTorch 2.x, a compiler, CMake, GoogleTest and yaml-cpp but no network and
# none of these (e.g. Ubuntu 24.04 with the PyTorch wheel): PCRE2's headers, cpp-httplib, CLI11, nlohmann-json.
# scripts/cuda_check.sh unpacks them into a private prefix there. DIR defaults to .gpu (ignore it in git).
set -euo pipefail
dir=${1:-.gpu}
mkdir -p "$dir"
cd "$dir"
apt-get download libpcre2-dev libpcre2-8-0 libcpp-httplib-dev libcpp-httplib0.11 libcli11-dev nlohmann-json3-dev
ls -1 *.deb
