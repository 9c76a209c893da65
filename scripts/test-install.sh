#!/usr/bin/env bash
# Installs nibble into a scratch prefix and builds examples/embed-c out of tree against the
# installed CMake package, as an app would, then runs it (once through, once cancelled).
#   scripts/test-install.sh [BUILD_DIR]     (default build-install; NIBBLE_SHARED_LIB=OFF for static)
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build-install}
shared=${NIBBLE_SHARED_LIB:-ON}
prefix=$(mktemp -d)
trap 'rm -rf "$prefix"' EXIT

cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DNIBBLE_BUILD_TESTS=OFF \
  -DNIBBLE_BUILD_BENCH=OFF -DNIBBLE_SHARED_LIB="$shared" -DCMAKE_INSTALL_PREFIX="$prefix" >/dev/null
cmake --build "$build" -j2
cmake --install "$build" >/dev/null
cmake -S examples/embed-c -B "$build/embed-c" -G Ninja -DCMAKE_PREFIX_PATH="$prefix" >/dev/null
cmake --build "$build/embed-c"
# The pkg-config file resolves too (apps without CMake use it).
PKG_CONFIG_PATH=$(dirname "$(find "$prefix" -name nibble.pc)") pkg-config --cflags --libs nibble

out=$("$build/embed-c/embed-c" assets/kjv-llama-q4_0.gguf "And God said")
echo "$out"
grep -q "tokens/s" <<<"$out"
out=$("$build/embed-c/embed-c" assets/kjv-llama-q4_0.gguf "And God said" 0)
echo "$out"
grep -q "stopped by the user" <<<"$out"
# The chat example needs an instruct model: SmolLM2 when scripts/fetch-models.sh has fetched it.
smollm2=${NIBBLE_MODELS:-$HOME/.cache/nibble/models}/SmolLM2-135M-Instruct.Q4_1.gguf
if [ -f "$smollm2" ]; then
  out=$("$build/embed-c/embed-chat" "$smollm2" "What is the capital of France?" "And of Italy?")
  echo "$out"
  grep -q "chat format: chatml" <<<"$out"
  grep -q "answer tokens" <<<"$out"
else
  echo "embed-chat: skipped ($smollm2 not found; scripts/fetch-models.sh fetches it)"
fi
echo "install + out-of-tree example: ok"
