#!/usr/bin/env bash
# threads_ab.sh: 1 -> 2 threads of two sdnn builds, interleaved round by round, each round
# labelled by the cache-line round trip between cores 0 and 1 before and after it (on some KVM
# guests the host moves the vCPUs between cores that share a cache and cores that do not:
# docs/strategies.md, issue 10, eighth pass). Prints one line per round and the medians.
# Usage: OLD=path/to/sdnn NEW=path/to/sdnn [ROUNDS=12] [SIMD=AVX2] bench/threads_ab.sh SDNN_ARGS...
#   e.g. bench/threads_ab.sh --network /tmp/off/neuron1024-l120.sdnn --neurons 1024 --layers 120 \
#          --input /tmp/off/sparse-images-1024-1200.sdnn --inputs 1200   (archives from `sdnn convert`)
# The round trip comes from bench/core_round_trip.c, built here into $TMPDIR when missing.
set -euo pipefail
cd "$(dirname "$0")/.."
old=${OLD:?OLD=the first sdnn binary} new=${NEW:?NEW=the second sdnn binary} rounds=${ROUNDS:-12}
trip_bin=${TMPDIR:-/tmp}/core_round_trip
[ -x "$trip_bin" ] || cc -O2 -o "$trip_bin" bench/core_round_trip.c
trip() { "$trip_bin" 2>&1 | sed -n 's/.*round trip \([0-9.]*\) ns.*/\1/p'; }
infer_s() {  # BINARY THREADS ARGS...
  local bin=$1 threads=$2; shift 2
  SDNN_SIMD=${SIMD:-} "$bin" "$@" --threads "$threads" -q | grep '^summary ' | tr ' ' '\n' | sed -n 's/^infer_s=//p'
}
echo "round trip_before_ns trip_after_ns old_1t old_2t new_1t new_2t old_speedup new_speedup"
rows=$(mktemp)
trap 'rm -f "$rows"' EXIT
for r in $(seq "$rounds"); do
  before=$(trip)
  o1=$(infer_s "$old" 1 "$@"); n1=$(infer_s "$new" 1 "$@"); o2=$(infer_s "$old" 2 "$@"); n2=$(infer_s "$new" 2 "$@")
  after=$(trip)
  echo "$r $before $after $o1 $o2 $n1 $n2" | awk '{ printf "%s %s %s %s %s %s %s %.3f %.3f\n", $1, $2, $3, $4, $5, $6, $7, $4 / $5, $6 / $7 }' |
    tee -a "$rows"
done
median() { sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
for k in 4 5 6 7 8 9; do printf '%s ' "$(awk -v k="$k" '{ print $k }' "$rows" | median)"; done |
  awk '{ printf "medians: old %s / %s s, new %s / %s s; 1 -> 2 threads (median of the rounds) old %sx, new %sx\n", $1, $2, $3, $4, $5, $6 }'
