#!/usr/bin/env bash
# Runs one libFuzzer target for a while: scripts/fuzz.sh TARGET SECONDS [-- extra libFuzzer flags]
#   TARGET: fuzz_gguf | fuzz_llama2c | fuzz_vocab | fuzz_tokenizer | fuzz_nibble |
#           fuzz_safetensors | all
# Configures and builds the clang fuzz build (build-fuzz, or $NIBBLE_FUZZ_BUILD) if needed, makes
# the seed corpora (tests/fuzz/make-seeds.sh), then fuzzes with the corpus kept in
# BUILD/fuzz-corpus/TARGET, so later runs resume where earlier ones stopped. A finding (crash,
# leak, timeout, huge allocation) is saved under BUILD/fuzz-artifacts/ and the script fails.
# Jobs: $NIBBLE_FUZZ_JOBS parallel workers (default 1).
# Reproducible runs: NIBBLE_FUZZ_RUNS=N stops each target after N inputs from a fixed random seed
# (SECONDS stays the upper bound), so the same tree always explores the same inputs — CI uses it;
# open-ended runs without it explore new ground each time.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
target=${1:?usage: scripts/fuzz.sh TARGET SECONDS [-- libFuzzer flags]}
seconds=${2:?usage: scripts/fuzz.sh TARGET SECONDS [-- libFuzzer flags]}
shift 2
[ "${1:-}" = "--" ] && shift
build=${NIBBLE_FUZZ_BUILD:-build-fuzz}

if [ ! -f "$build/build.ninja" ]; then
  cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ \
    -DNIBBLE_FUZZ=ON -DNIBBLE_BUILD_BENCH=OFF >/dev/null
fi
cmake --build "$build" -j2 --target nibble_fuzzers
tests/fuzz/make-seeds.sh "$build" "$build/fuzz-seeds" >/dev/null

targets=("$target")
[ "$target" = all ] && targets=(fuzz_gguf fuzz_llama2c fuzz_vocab fuzz_tokenizer fuzz_nibble fuzz_safetensors)
for t in "${targets[@]}"; do
  seeds="$build/fuzz-seeds/${t#fuzz_}"
  corpus="$build/fuzz-corpus/$t"
  artifacts="$build/fuzz-artifacts/$t"
  [ -d "$seeds" ] || { echo "fuzz.sh: unknown target '$t'" >&2; exit 2; }
  mkdir -p "$corpus" "$artifacts"
  flags=(-max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -malloc_limit_mb=512
         -max_len=8192 -print_final_stats=1 -artifact_prefix="$artifacts/")
  # The GGUF-shaped targets get the format's keys and type ids as a dictionary.
  case $t in fuzz_gguf | fuzz_vocab | fuzz_nibble) flags+=(-dict=tests/fuzz/gguf.dict) ;; esac
  # sentencepiece's encode grows faster than linearly with the text: shorter texts, more runs.
  # (Texts past the 4 KB chunk size are covered by tests/hardening_bad_input_test.cpp.)
  [ "$t" = fuzz_tokenizer ] && flags+=(-max_len=1024)
  [ -n "${NIBBLE_FUZZ_RUNS:-}" ] && flags+=(-runs="$NIBBLE_FUZZ_RUNS" -seed=1)
  jobs=${NIBBLE_FUZZ_JOBS:-1}
  [ "$jobs" -gt 1 ] && flags+=(-fork="$jobs")
  echo "=== $t for ${seconds}s (corpus $corpus)"
  # detect_leaks: a parser that leaks on a bad file is a bug too.
  ASAN_OPTIONS=detect_leaks=1:allocator_may_return_null=0 \
    "$build/tests/fuzz/$t" "${flags[@]}" "$@" "$corpus" "$seeds"
done
