#!/usr/bin/env bash
# Perplexity of GGUF files in nibble and in llama.cpp's llama-perplexity, side by side: that
# nibble runs llama.cpp's files as llama.cpp does, and that the GGUF files nibble writes are
# files llama.cpp reads and scores the same.
#
#   scripts/gguf-crosscheck.sh [-c 256] [-f TEXT] [-q SRC.gguf RECIPE...] [FILE.gguf...]
#
# -q SRC: quantize SRC with nibble's quantize-model into each RECIPE first (GGUF recipes:
# Q4_1, Q5_0, Q5_1, Q2_K, Q3_K_M, Q4_K_M, Q5_K_M, Q6_K, IQ4_NL, IQ4_XS, ...). Defaults: the
# shared KJV model's text and context (-c 256, ../shared/data/kjv-valid.txt). Needs a build in
# $BUILD (default build/) and llama-perplexity in $PEERS (default ../shared/peers).
# Prints a markdown table with the relative difference of the two perplexities.
set -euo pipefail

cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
PEERS=${PEERS:-../shared/peers}
CTX=256
TEXT=../shared/data/kjv-valid.txt
SRC=""
while getopts "c:f:q:" opt; do
  case $opt in
    c) CTX=$OPTARG ;;
    f) TEXT=$OPTARG ;;
    q) SRC=$OPTARG ;;
    *) echo "usage: $0 [-c 256] [-f TEXT] [-q SRC.gguf RECIPE...] [FILE.gguf...]" >&2; exit 2 ;;
  esac
done
shift $((OPTIND - 1))
[ -x "$PEERS/llama-perplexity" ] || { echo "$PEERS/llama-perplexity is missing" >&2; exit 1; }

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
files=()
if [ -n "$SRC" ]; then
  for recipe in "$@"; do
    out="$tmp/$(basename "${SRC%.gguf}")-nibble-$recipe.gguf"
    "$BUILD/examples/quantize-model" "$SRC" "$out" "$recipe" > /dev/null 2> "$tmp/quantize.log" ||
      { cat "$tmp/quantize.log" >&2; exit 1; }
    files+=("$out")
  done
else
  files=("$@")
fi

echo "Text: $(basename "$TEXT"), -c $CTX; nibble: run-model perplexity; llama.cpp: llama-perplexity"
echo
echo "| file | size (MB) | nibble PPL | llama.cpp PPL | difference |"
echo "| --- | ---: | ---: | ---: | ---: |"
for f in "${files[@]}"; do
  n=$("$BUILD/examples/run-model" perplexity -m "$f" -f "$TEXT" -c "$CTX" --json 2>/dev/null |
    python3 -c "import json,sys; print('%.4f' % json.load(sys.stdin)['ppl'])")
  l=$("$PEERS/llama-perplexity" -m "$f" -f "$TEXT" -c "$CTX" -t "$(nproc)" 2>&1 |
    sed -n 's/.*Final estimate: PPL = \([0-9.]*\).*/\1/p')
  diff=$(python3 -c "print('%+.3f %%' % (100 * ($n - $l) / $l))" 2>/dev/null || echo "llama.cpp failed")
  size=$(python3 -c "import os; print('%.2f' % (os.path.getsize('$f') / 1e6))")
  echo "| $(basename "$f") | $size | $n | ${l:--} | $diff |"
done
