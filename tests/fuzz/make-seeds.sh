#!/usr/bin/env bash
# Builds the fuzz seed corpora into OUT_DIR (default build-fuzz/fuzz-seeds), one folder per target:
#   - tiny valid files written by fuzz_make_seeds (the fuzz build's seed writer), < 4 KB each;
#   - the first 4 KB of the real files in ../shared (headers and the start of the metadata),
#     so the fuzzers see real key names, value types and layouts without megabytes per input;
#   - texts for the tokenizer: the tokenizer test vectors (*.inp) and KJV lines.
# Real files that are missing are skipped with a message. Nothing large is written.
# Usage: tests/fuzz/make-seeds.sh BUILD_DIR [OUT_DIR]
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
build=${1:?usage: make-seeds.sh BUILD_DIR [OUT_DIR]}
out=${2:-$build/fuzz-seeds}
shared="$root/../shared"
cut=4096

mkdir -p "$out"/{gguf,llama2c,vocab,tokenizer,nibble,safetensors}
"$build/tests/fuzz/fuzz_make_seeds" "$out"

head_of() {  # head_of FILE DEST
  if [ -f "$1" ]; then head -c "$cut" "$1" >"$2"; else echo "make-seeds: skipping missing $1" >&2; fi
}
head_of "$root/assets/kjv-llama-q4_0.gguf" "$out/gguf/kjv-q4_0-head.gguf"
for t in F16 Q8_0 Q4_K_M Q6_K; do
  head_of "$shared/models/kjv-llama/kjv-llama-$t.gguf" "$out/gguf/kjv-$t-head.gguf"
done
head_of "$shared/models/kjv-llama/kjv-llama.bin" "$out/llama2c/kjv-head.bin"
for f in "$shared"/data/tokenizer-vectors/*.gguf; do
  [ -f "$f" ] || continue
  head_of "$f" "$out/vocab/$(basename "$f" .gguf)-head.gguf"
  cp "$out/vocab/$(basename "$f" .gguf)-head.gguf" "$out/gguf/"
done
# A truncated real header is not a valid vocabulary; the tiny valid ones carry the deep paths.
cp "$out"/gguf/tiny-*.gguf "$out/llama2c/" 2>/dev/null || true

# Tokenizer inputs: byte 0 = flags (bit 0 add_special, bit 1 parse_special), then the text.
n=0
for f in "$shared"/data/tokenizer-vectors/*.inp; do
  [ -f "$f" ] || continue
  for flags in '\x00' '\x03'; do
    { printf "$flags"; head -c "$cut" "$f"; } >"$out/tokenizer/inp-$n"; n=$((n + 1))
  done
done
if [ -f "$shared/data/kjv-valid.txt" ]; then
  head -n 40 "$shared/data/kjv-valid.txt" | split -l 4 - "$out/tokenizer/kjv-"
  for f in "$out"/tokenizer/kjv-*; do { printf '\x00'; cat "$f"; } >"$f.t" && mv "$f.t" "$f"; done
fi
printf '\x00' >"$out/tokenizer/empty"
printf '\x03<s>hello</s> <unk>' >"$out/tokenizer/special"
printf '\x00 caf\xc3\xa9 \xe6\x97\xa5\xe6\x9c\xac \xf0\x9f\x98\x80\t\r\n  x' >"$out/tokenizer/utf8"
printf '\x01\xff\xfe\xc3\x28\xed\xa0\x80' >"$out/tokenizer/invalid-utf8"
# Bits 2-3 pick fuzz_tokenizer's BPE pre-tokenizer (smollm, llama-bpe, qwen2, deepseek-llm).
printf '\x04 there the and 123 12\n\n  x' >"$out/tokenizer/bpe-llama"
printf '\x08I'"'"'ll see café 2024\r\n\t \xe2\x96\x81' >"$out/tokenizer/bpe-qwen2"
printf '\x0e<|im_start|>\xe4\xbd\xa0\xe5\xa5\xbd \xce\xb1\xce\xb2 ab!?  \n<tool>' >"$out/tokenizer/bpe-deepseek"
echo "make-seeds: $(find "$out" -type f | wc -l) seeds in $out ($(du -sh "$out" | cut -f1))"
