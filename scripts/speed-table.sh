#!/usr/bin/env bash
# Prefill and decode speed of GGUF files in nibble and in the peers (llama.cpp, ik_llama.cpp), in
# one run, with the ratios the kernel and GGUF-type issues ask for:
#   tg roofline  decode t/s × bytes streamed per token ÷ the read bandwidth measured just before
#                (bench_matmul's StreamRead; bytes per token = every tensor but token_embd)
#   pp/peer      nibble's pp ÷ the faster peer's pp
#   pp/Q8_0      nibble's pp ÷ nibble's pp on the Q8_0 file, when one of the files is Q8_0
#
#   scripts/speed-table.sh [-t THREADS] [-p 512] [-n 128] [-r 3] FILE.gguf...
#
# Needs a Release build in $BUILD (default build/) and the peers in $PEERS (default
# ../shared/peers; missing peers are left out). Prints a markdown table. Run it on a quiet machine:
# the numbers are only as good as the machine's quietest moment.
set -euo pipefail

cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
PEERS=${PEERS:-../shared/peers}
THREADS=2 PP=512 TG=128 REPS=3
while getopts "t:p:n:r:" opt; do
  case $opt in
    t) THREADS=$OPTARG ;;
    p) PP=$OPTARG ;;
    n) TG=$OPTARG ;;
    r) REPS=$OPTARG ;;
    *) echo "usage: $0 [-t THREADS] [-p 512] [-n 128] [-r 3] FILE.gguf..." >&2; exit 2 ;;
  esac
done
shift $((OPTIND - 1))
[ $# -gt 0 ] || { echo "usage: $0 [-t THREADS] [-p 512] [-n 128] [-r 3] FILE.gguf..." >&2; exit 2; }
for tool in "$BUILD/bench/bench-model" "$BUILD/bench/bench_matmul" "$BUILD/examples/run-model"; do
  [ -x "$tool" ] || { echo "$tool is missing: build first (cmake --build $BUILD)" >&2; exit 1; }
done

# avg_ts of the pp and tg tests from a llama-bench style JSON array (or JSON lines).
json_ts() {  # FILE KIND(pp|tg)
  python3 - "$1" "$2" <<'EOF'
import json, sys
text = open(sys.argv[1]).read().strip()
try:
    rows = json.loads(text)
except json.JSONDecodeError:
    rows = [json.loads(l) for l in text.splitlines() if l.strip().startswith('{')]
for r in rows:
    if (sys.argv[2] == 'pp' and r['n_prompt'] > 0 and r['n_gen'] == 0) or \
       (sys.argv[2] == 'tg' and r['n_gen'] > 0 and r['n_prompt'] == 0):
        print('%.1f' % r['avg_ts']); break
else:
    print('-')
EOF
}

stream_gbps() {
  NIBBLE_BENCH_THREADS=$THREADS "$BUILD/bench/bench_matmul" --benchmark_filter='StreamRead' 2>/dev/null |
    sed -n 's/.*roofline_GB\/s=\([0-9.]*\).*/\1/p' | head -1
}

# Bytes a decode step streams: every tensor but the token-embedding table (a row lookup).
decode_bytes() {
  "$BUILD/examples/run-model" info -m "$1" 2>/dev/null |
    awk 'p && NF >= 5 && $1 != "token_embd.weight" { s += $NF } /^tensor +type/ { p = 1 } END { print s }'
}

# The type llama.cpp names the file by (general.file_type), for the table.
file_type() {
  local ft
  ft=$("$BUILD/examples/run-model" info -m "$1" 2>/dev/null | awk '$1 == "general.file_type" { print $3 }')
  case $ft in
    0) echo F32 ;; 1) echo F16 ;; 2) echo Q4_0 ;; 3) echo Q4_1 ;; 7) echo Q8_0 ;; 8) echo Q5_0 ;; 9) echo Q5_1 ;;
    10) echo Q2_K ;; 11) echo Q3_K_S ;; 12) echo Q3_K_M ;; 13) echo Q3_K_L ;; 14) echo Q4_K_S ;; 15) echo Q4_K_M ;;
    16) echo Q5_K_S ;; 17) echo Q5_K_M ;; 18) echo Q6_K ;; 25) echo IQ4_NL ;; 30) echo IQ4_XS ;; *) echo "type $ft" ;;
  esac
}

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
echo "CPU: $(lscpu | sed -n 's/^Model name: *//p'), $THREADS threads, pp$PP / tg$TG, $REPS repetitions"
echo
echo "| file | runtime | pp$PP t/s | tg$TG t/s | read GB/s | tg roofline | pp/peer | pp/Q8_0 |"
echo "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |"
q8_pp=""
for f in "$@"; do
  type=$(file_type "$f")
  bytes=$(decode_bytes "$f")
  "$BUILD/bench/bench-model" -m "$f" -p "$PP" -n 0 -t "$THREADS" -r "$REPS" -o json > "$tmp/n_pp.json"
  gbps=$(stream_gbps)
  "$BUILD/bench/bench-model" -m "$f" -p 0 -n "$TG" -t "$THREADS" -r "$REPS" -o json > "$tmp/n_tg.json"
  n_pp=$(json_ts "$tmp/n_pp.json" pp)
  n_tg=$(json_ts "$tmp/n_tg.json" tg)
  best_peer=0
  peer_rows=""
  for peer in llama-bench ik-llama-bench; do
    [ -x "$PEERS/$peer" ] || continue
    "$PEERS/$peer" -m "$f" -p "$PP" -n "$TG" -t "$THREADS" -r "$REPS" -o json > "$tmp/$peer.json" 2>/dev/null || {
      peer_rows+="| $type | $peer | failed | | | | | |"$'\n'
      continue
    }
    p_pp=$(json_ts "$tmp/$peer.json" pp)
    p_tg=$(json_ts "$tmp/$peer.json" tg)
    best_peer=$(python3 -c "print(max($best_peer, float('$p_pp') if '$p_pp' != '-' else 0))")
    p_roof=$(python3 -c "print('%.2f' % ($p_tg * $bytes / 1e9 / $gbps))" 2>/dev/null || echo -)
    peer_rows+="| $type | ${peer%-bench} | $p_pp | $p_tg | | $p_roof | | |"$'\n'
  done
  roof=$(python3 -c "print('%.2f' % ($n_tg * $bytes / 1e9 / $gbps))")
  vs_peer=$(python3 -c "print('%.2f' % ($n_pp / $best_peer) if $best_peer > 0 else '-')")
  [ "$type" = Q8_0 ] && q8_pp=$n_pp
  printf '| %s | nibble | %s | %s | %.1f | %s | %s | @Q8@%s |\n' "$type" "$n_pp" "$n_tg" "$gbps" "$roof" "$vs_peer" "$n_pp"
  printf '%s' "$peer_rows"
done > "$tmp/table"
# pp relative to nibble's own Q8_0 prefill, once every file has run.
while IFS= read -r line; do
  if [[ $line == *@Q8@* ]]; then
    pp=${line##*@Q8@}; pp=${pp%% *}
    ratio=$([ -n "$q8_pp" ] && python3 -c "print('%.2f' % ($pp / $q8_pp))" || echo -)
    line="${line%@Q8@*}$ratio |"
  fi
  echo "$line"
done < "$tmp/table"
