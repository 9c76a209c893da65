#!/usr/bin/env bash
# Regenerates the "Calibrated quantization" section of docs/quality.md (issue #12): RTN against
# AWQ, GPTQ and both, W8A8 with each activation calibration, outlier decomposition and bit
# allocation by sensitivity, beside llama.cpp's own files, on the shared KJV model (reference:
# the F32 llama2.c checkpoint) and on SmolLM2-135M-Instruct (reference: its Q4_1 weights
# dequantised to F32) when scripts/fetch-models.sh has fetched it.
#   scripts/calibrated-quality.sh [BUILD_DIR] [CHUNKS] [SECTIONS]
# (defaults: build, 150 chunks, "kjv smol"; a section not named keeps its table in the file).
# Needs ../shared beside the checkout. Takes ~25 min (kjv) + ~10 min (smol) on 2 cores.
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
chunks=${2:-150}
sections=${3:-kjv smol}
shared=../shared
kjv=$shared/models/kjv-llama
tok=$shared/models/llama2-tokenizer.model
text=$shared/data/kjv-valid.txt
calib=$shared/data/kjv-train.txt
run=$build/examples/run-model
quant=$build/examples/quantize-model
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

rows=()
# label, method, file, ref logits, ctx, [extra run flags]
measure() {
  local label=$1 method=$2 file=$3 ref=$4 ctx=$5; shift 5
  echo "  $label: $method" >&2
  local bytes; bytes=$(stat -c %s "$file")
  "$run" perplexity -m "$file" "$@" -f "$text" -c "$ctx" --chunks "$chunks" --ref-logits "$ref" \
    --json > "$work/out.json" 2> "$work/err.txt"
  rows+=("$(python3 - "$work/out.json" "$bytes" "$label" "$method" <<'PY'
import json, sys
r = json.load(open(sys.argv[1])); size = int(sys.argv[2])
bpw = 8 * r['tensor_bytes'] / r['n_params']
print(f"| {sys.argv[3]} | {sys.argv[4]} | {size/1e6:.2f} | {bpw:.2f} | {r['ppl']:.4f} | "
      f"{r['delta_ppl']:+.4f} | {r['kld_mean']:.6f} | {100*r['top1_agreement']:.2f} |")
PY
)")
}
# label, method, source, recipe, out extension, ref, ctx, [quantize-model flags]
quantize_and_measure() {
  local label=$1 method=$2 src=$3 recipe=$4 ext=$5 ref=$6 ctx=$7; shift 7
  local out="$work/q.$ext" t0=$SECONDS
  "$quant" "$src" "$out" "$recipe" "$@" 2> "$work/q.err" || { cat "$work/q.err" >&2; exit 1; }
  measure "$label" "$method ($((SECONDS - t0)) s)" "$out" "$ref" "$ctx"
  rm -f "$out"
}


if [[ " $sections " == *" kjv "* ]]; then
echo "KJV reference: F32 llama2.c checkpoint" >&2
"$run" perplexity -m "$kjv/kjv-llama.bin" --tokenizer "$tok" -f "$text" -c 256 --chunks "$chunks" \
  --save-logits "$work/kjv.logits" --json > "$work/kjv.json"
# The source: llama.cpp's F16 conversion (KLD 0.000000 against F32), which like llama.cpp's
# quantized files stores the tied head twice, so sizes compare with theirs.
src=$kjv/kjv-llama-F16.gguf
ref=$work/kjv.logits
cal=(--calib "$calib")
for t in Q8_0 Q6_K Q4_K_M Q4_1 Q4_0; do
  measure "$t" "llama.cpp's file" "$kjv/kjv-llama-$t.gguf" "$ref" 256
done
for r in "q4 q4" "q4-g128 q4" "Q4_K_M gguf"; do
  set -- $r
  quantize_and_measure "$1" "RTN" "$src" "$1" "$2" "$ref" 256
  quantize_and_measure "$1" "AWQ" "$src" "$1" "$2" "$ref" 256 "${cal[@]}" --awq
  quantize_and_measure "$1" "GPTQ" "$src" "$1" "$2" "$ref" 256 "${cal[@]}" --gptq
  quantize_and_measure "$1" "AWQ+GPTQ" "$src" "$1" "$2" "$ref" 256 "${cal[@]}" --awq --gptq
done
for a in minmax percentile kl mse; do
  quantize_and_measure "q8a8" "SmoothQuant α 0.5, act-calib $a" "$src" q8a8 q8 "$ref" 256 "${cal[@]}" --act-calib "$a"
done
quantize_and_measure "q8o" "outliers |x| > 6 in F16" "$src" q8o q8 "$ref" 256 "${cal[@]}"
for b in 4.0 4.5 5.0; do
  quantize_and_measure "auto" "--target-bpw $b" "$src" auto q4 "$ref" 256 "${cal[@]}" --sens-chunks 2 --target-bpw "$b"
done
quantize_and_measure "auto" "--target-size 14010560 (Q3_K_M's size)" "$src" auto q4 "$ref" 256 "${cal[@]}" --sens-chunks 2 --target-size 14010560
quantize_and_measure "auto" "--target-size 14010560, AWQ+GPTQ" "$src" auto q4 "$ref" 256 "${cal[@]}" --sens-chunks 2 --target-size 14010560 --awq --gptq
kjv_rows=("${rows[@]}")
fi

rows=()
smol_rows=()
smol=${NIBBLE_MODELS:-$HOME/.cache/nibble/models}/SmolLM2-135M-Instruct.Q4_1.gguf
if [[ " $sections " == *" smol "* ]] && [ -f "$smol" ]; then
  echo "SmolLM2 reference: its Q4_1 weights as F32" >&2
  "$quant" "$smol" "$work/smol-f32.gguf" F32 2>/dev/null
  src=$work/smol-f32.gguf
  ref=$work/smol.logits
  "$run" perplexity -m "$src" -f "$text" -c 512 --chunks 40 --save-logits "$ref" --json > /dev/null
  chunks_saved=$chunks
  chunks=40
  cal=(--calib "$calib" --calib-chunks 32 --calib-ctx 512)
  for r in "q4 q4" "q4-g128 q4"; do
    set -- $r
    quantize_and_measure "$1" "RTN" "$src" "$1" "$2" "$ref" 512
    quantize_and_measure "$1" "AWQ+GPTQ" "$src" "$1" "$2" "$ref" 512 "${cal[@]}" --awq --gptq
  done
  quantize_and_measure "Q4_K_M" "RTN" "$src" Q4_K_M gguf "$ref" 512
  quantize_and_measure "Q4_K_M" "AWQ+GPTQ" "$src" Q4_K_M gguf "$ref" 512 "${cal[@]}" --awq --gptq
  quantize_and_measure "q8a8" "SmoothQuant α 0.5, act-calib mse" "$src" q8a8 q8 "$ref" 512 "${cal[@]}"
  quantize_and_measure "q8o" "outliers |x| > 6 in F16" "$src" q8o q8 "$ref" 512 "${cal[@]}"
  chunks=$chunks_saved
  smol_rows=("${rows[@]}")
fi

kjv_rows=("${kjv_rows[@]+"${kjv_rows[@]}"}")
{
  echo "<!-- calibrated-kjv:begin -->"
  echo "Generated by \`scripts/calibrated-quality.sh\` on $(date -u +%Y-%m-%d). Calibration: 128"
  echo "sequences of 128 tokens drawn from \`kjv-train.txt\` (seed 1). KJV model: \`kjv-valid.txt\`,"
  echo "\`-c 256\`, first $chunks chunks, KLD and top-1 against the F32 checkpoint. Every nibble file is"
  echo "made from llama.cpp's F16 conversion (which, like llama.cpp's own files, stores the tied head"
  echo "twice, so sizes compare). The time is quantize-model's (calibration included), 2 threads."
  echo
  echo "| file | method | size (MB) | bits/weight | PPL | ΔPPL | mean KLD | top-1 % |"
  echo "|---|---|---:|---:|---:|---:|---:|---:|"
  printf '%s\n' "${kjv_rows[@]}"
  echo "<!-- calibrated-kjv:end -->"
} > "$work/kjv.md"
{
  echo "<!-- calibrated-smol:begin -->"
  echo "SmolLM2-135M-Instruct: reference its Q4_1 weights dequantised to F32 (so Q4_1's own"
  echo "rounding is not counted); calibration 32 sequences of 512 tokens from \`kjv-train.txt\`;"
  echo "\`kjv-valid.txt\`, \`-c 512\`, first 40 chunks. (Its embedding table is also its head: the"
  echo "\`q4\` recipes quantize it to 4 bits, llama.cpp's mixes keep it at 6.)"
  echo
  echo "| file | method | size (MB) | bits/weight | PPL | ΔPPL | mean KLD | top-1 % |"
  echo "|---|---|---:|---:|---:|---:|---:|---:|"
  printf '%s\n' "${smol_rows[@]}"
  echo "<!-- calibrated-smol:end -->"
} > "$work/smol.md"
python3 - "$work" "$sections" <<'PY'
import re, sys
work, sections = sys.argv[1], sys.argv[2].split()
doc = open("docs/quality.md").read()
if "<!-- calibrated:begin" not in doc:
    doc = doc.rstrip("\n") + ("\n\n<!-- calibrated:begin (scripts/calibrated-quality.sh; kept by "
                              "scripts/quality-table.sh) -->\n## Calibrated quantization\n\n"
                              "<!-- calibrated-kjv:begin -->\n<!-- calibrated-kjv:end -->\n\n"
                              "<!-- calibrated-smol:begin -->\n<!-- calibrated-smol:end -->\n"
                              "<!-- calibrated:end -->\n")
for name in ("kjv", "smol"):
    if name not in sections:
        continue
    new = open(f"{work}/{name}.md").read().rstrip("\n")
    pat = re.compile(rf"<!-- calibrated-{name}:begin -->.*?<!-- calibrated-{name}:end -->", re.S)
    doc = pat.sub(lambda m: new, doc)
open("docs/quality.md", "w").write(doc)
PY
echo "updated docs/quality.md" >&2
