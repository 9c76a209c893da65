#!/usr/bin/env bash
# Installs nibble's build and test dependencies from Debian 12's packages.
set -euo pipefail
pkgs=(cmake ninja-build g++ pkg-config
      libhwy-dev libdnnl-dev libsentencepiece-dev libpcre2-dev
      libgtest-dev libgmock-dev libbenchmark-dev
      # nibble's own file format: XXH64 checksums (header-only use, found with pkg-config
      # libxxhash) and the JSON in safetensors headers / Hugging Face config.json (header-only)
      libxxhash-dev nlohmann-json3-dev
      # sanitizer and fuzz builds (.ci/run, CMakePresets.json): clang with libFuzzer and the
      # sanitizer runtimes, LLVM's OpenMP (libomp + libarcher) for ThreadSanitizer
      clang libclang-rt-14-dev libomp-dev)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}"
