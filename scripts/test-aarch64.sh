#!/usr/bin/env bash
# AArch64 port check (issue #6): cross-builds nibble with Debian's g++-aarch64-linux-gnu against
# the arm64 packages, then runs under qemu-user
#   the kernel tests on three emulated CPUs, one per int8 path of kernels/dispatch.h:
#     max         dot product + i8mm: NEON_I8MM, NEON_DOTPROD and plain NEON all tested
#     cortex-a76  dot product, no i8mm (Armv8.2): NEON_DOTPROD and NEON
#     cortex-a57  neither (Armv8.0): the plain NEON fallback only
#   the end-to-end logits test (tests/model_forward_test.cpp) on the shared KJV model under
#   -cpu max (it skips with a message when ../shared is absent), and run-model on the bundled
#   assets model under each CPU (greedy, 8 tokens), checking the int8 path it reports.
# Usage: scripts/test-aarch64.sh [BUILD_DIR]   (default build-aarch64; NIBBLE_JOBS, default 2)
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build-aarch64}
jobs=${NIBBLE_JOBS:-2}

scripts/install-deps-aarch64.sh

# Tests are listed when ctest runs, not after each link, so building does not start qemu.
cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release \
  -DCMAKE_TOOLCHAIN_FILE="$PWD/cmake/aarch64-linux-gnu.cmake" \
  -DNIBBLE_BUILD_BENCH=OFF -DNIBBLE_WITH_ONEDNN=OFF \
  -DCMAKE_GTEST_DISCOVER_TESTS_DISCOVERY_MODE=PRE_TEST >/dev/null
cmake --build "$build" -j"$jobs" --target kernels_dispatch_test kernels_matmul_test kernels_ops_test \
  kernels_types_test model_forward_test run-model

failed=0
run() {  # run CPU EXPECTED_ISAS TEST [gtest args...]
  local cpu=$1 expect=$2 test=$3; shift 3
  local t0=$SECONDS out
  if out=$(NIBBLE_EXPECT_ISAS="$expect" qemu-aarch64 -cpu "$cpu" \
             "$build/tests/$test" --gtest_brief=1 "$@" 2>&1); then
    local skipped
    skipped=$(grep -Eo 'SKIPPED \] [0-9]+' <<<"$out" | grep -Eo '[0-9]+$' | head -1 || true)
    echo "PASS  -cpu $cpu  $test  $(grep -Eo '[0-9]+ tests? from [0-9]+ test suites? ran' <<<"$out" | head -1)," \
         "${skipped:-0} skipped  ($((SECONDS - t0)) s)"
  else
    echo "FAIL  -cpu $cpu  $test"
    echo "$out" | tail -40
    failed=1
  fi
}

run max "NEON_I8MM NEON_DOTPROD NEON" kernels_dispatch_test
run cortex-a76 "NEON_DOTPROD NEON" kernels_dispatch_test
run cortex-a57 "NEON" kernels_dispatch_test
for cpu in max cortex-a76 cortex-a57; do
  run "$cpu" "" kernels_matmul_test
done
# Highway's NEON target is the only one compiled on AArch64, the same on every CPU: once.
run max "" kernels_ops_test
run max "" kernels_types_test
run max "" model_forward_test

# run-model end to end on the bundled model: the default int8 path follows each CPU's HWCAP.
smoke() {  # smoke CPU EXPECTED_ISA
  local out
  out=$(qemu-aarch64 -cpu "$1" "$build/examples/run-model" -m assets/kjv-llama-q4_0.gguf \
          -p "In the beginning" -n 8 --temp 0 -t 2 2>&1) || true
  if grep -q "isa $2," <<<"$out" && grep -q "tokens/s (tg)" <<<"$out"; then
    echo "PASS  -cpu $1  run-model (isa $2): $(grep -m1 '^In the beginning' <<<"$out")"
  else
    echo "FAIL  -cpu $1  run-model (expected isa $2)"
    echo "$out" | tail -20
    failed=1
  fi
}
smoke max NEON_I8MM
smoke cortex-a76 NEON_DOTPROD
smoke cortex-a57 NEON
exit $failed
