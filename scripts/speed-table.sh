#!/usr/bin/env bash
# Prefill and decode speed of GGUF files in nibble and in the peers (llama.cpp, ik_llama.cpp), in
# one run, with the ratios the kernel and GGUF-type issues ask for:
#   tg roofline  decode t/s × bytes streamed per token ÷ the read bandwidth measured either side
#                of that run (bench_matmul's StreamRead; bytes per token = every tensor but
#                token_embd)
#   pp/peer      nibble's pp ÷ the faster peer's pp
#   pp/Q8_0      nibble's pp ÷ nibble's pp on the Q8_0 file, when one of the files is Q8_0
#
#   scripts/speed-table.sh [-t THREADS] [-p 512] [-n 128] [-r 3] FILE.gguf...
#
# -r is the number of interleaved rounds (every runtime once per round); the table shows each
# runtime's median over the rounds. Needs a Release build in $BUILD (default build/) and the peers
# in $PEERS (default ../shared/peers; missing peers are left out). Prints a markdown table.
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
  NIBBLE_BENCH_THREADS=$THREADS "$BUILD/bench/bench_matmul" --benchmark_filter='StreamRead' --benchmark_min_time=0.01 2>/dev/null |
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

# Median of each runtime's rounds for one file (lines "runtime pp tg probe_before probe_after"),
# as table rows; nibble's row carries its pp after @Q8@ for the pp/Q8_0 column.
summarise() {  # ROUNDS TYPE DECODE_BYTES
  python3 - "$@" <<'EOF'
import statistics, sys
kind, decode_bytes = sys.argv[2], float(sys.argv[3])
num = lambda s: None if s == '-' else float(s)
stats = {}
for line in open(sys.argv[1]):
    rt, pp, tg, before, after = line.split()
    s = stats.setdefault(rt, {'pp': [], 'tg': [], 'roof': [], 'gbps': []})
    gbps = (float(before) + float(after)) / 2
    s['gbps'].append(gbps)
    if num(pp) is not None: s['pp'].append(num(pp))
    if num(tg) is not None:
        s['tg'].append(num(tg))
        s['roof'].append(num(tg) * decode_bytes / 1e9 / gbps)
med = lambda xs: statistics.median(xs) if xs else None
fmt = lambda v, f='%.1f': '-' if v is None else f % v
peers = [med(s['pp']) for rt, s in stats.items() if rt != 'nibble']
best_peer = max([p for p in peers if p is not None], default=None)
for rt, s in stats.items():
    pp, tg, roof = med(s['pp']), med(s['tg']), med(s['roof'])
    if rt == 'nibble':
        vs = fmt(pp / best_peer if best_peer and pp else None, '%.2f')
        print('| %s | nibble | %s | %s | %.1f | %s | %s | @Q8@%s |'
              % (kind, fmt(pp), fmt(tg), med(s['gbps']), fmt(roof, '%.2f'), vs, fmt(pp)))
    else:
        print('| %s | %s | %s | %s | | %s | | |'
              % (kind, rt.replace('-bench', ''), fmt(pp), fmt(tg), fmt(roof, '%.2f')))
EOF
}

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
echo "CPU: $(lscpu | sed -n 's/^Model name: *//p'), $THREADS threads, pp$PP / tg$TG, medians of $REPS interleaved rounds"
echo
echo "| file | runtime | pp$PP t/s | tg$TG t/s | read GB/s | tg roofline | pp/peer | pp/Q8_0 |"
echo "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |"
runtimes=(nibble)
for peer in llama-bench ik-llama-bench; do
  if [ -x "$PEERS/$peer" ]; then runtimes+=("$peer"); fi
done
for f in "$@"; do
  type=$(file_type "$f")
  bytes=$(decode_bytes "$f")
  # Each round runs every runtime once (-r 1), with a bandwidth probe between consecutive
  # runtimes; a decode run is judged against the mean of the probes either side of it. This
  # host's read bandwidth swings (35-63 GB/s within minutes): runs of one runtime back to back
  # let whichever hit a quiet minute win, interleaved rounds put every runtime through the same
  # minutes, and the median drops the one round a neighbour disturbed.
  : > "$tmp/rounds"
  for _ in $(seq "$REPS"); do
    before=$(stream_gbps)
    for rt in "${runtimes[@]}"; do
      if [ "$rt" = nibble ]; then
        "$BUILD/bench/bench-model" -m "$f" -p 0 -n "$TG" -t "$THREADS" -r 1 -o json > "$tmp/tg.json"
        after=$(stream_gbps)
        "$BUILD/bench/bench-model" -m "$f" -p "$PP" -n 0 -t "$THREADS" -r 1 -o json > "$tmp/pp.json"
        pp=$(json_ts "$tmp/pp.json" pp)
        tg=$(json_ts "$tmp/tg.json" tg)
      else
        if "$PEERS/$rt" -m "$f" -p "$PP" -n "$TG" -t "$THREADS" -r 1 -o json > "$tmp/peer.json" 2>/dev/null; then
          pp=$(json_ts "$tmp/peer.json" pp)
          tg=$(json_ts "$tmp/peer.json" tg)
        else
          pp=- tg=-
        fi
        after=$(stream_gbps)
      fi
      echo "$rt $pp $tg $before $after" >> "$tmp/rounds"
      before=$after
    done
  done
  summarise "$tmp/rounds" "$type" "$bytes"
done > "$tmp/table"
# pp relative to nibble's own Q8_0 prefill, once every file has run.
q8_pp=$(sed -n 's/^| Q8_0 | nibble |.*@Q8@\([0-9.]*\) |$/\1/p' "$tmp/table" | head -1)
while IFS= read -r line; do
  if [[ $line == *@Q8@* ]]; then
    pp=${line##*@Q8@}; pp=${pp%% *}
    ratio=$([ -n "$q8_pp" ] && [ "$pp" != - ] && python3 -c "print('%.2f' % ($pp / $q8_pp))" || echo -)
    line="${line%@Q8@*}$ratio |"
  fi
  echo "$line"
done < "$tmp/table"
