#!/usr/bin/env bash
# model_ratios.sh: issue 10's data x model targets, measured in interleaved rounds. Each round runs
# `--strategy data` with 2 threads and `--strategy model --grid 1x1` with 2 threads (one rank),
# then `--strategy data`, `--grid 1x2` and `--grid 2x1` at 2 ranks x 1 thread (mpirun --bind-to
# none), and prints the round's ratios 1x1 / data and 1x2, 2x1 / data x data (infer_s), labelled
# by the cache-line round trip between the two cores before and after the round (on some KVM
# guests the host moves the vCPUs between cores that share a cache and cores that do not: docs/
# strategies.md, "Two modes of this guest"); then the medians of the ratios over every round.
# Targets: 1x1 within 1.3x of data, 1x2 and 2x1 within 1.5x of data x data.
# Usage: [SDNN=path/to/sdnn] [ROUNDS=6] bench/model_ratios.sh SDNN_ARGS...
#   e.g. bench/model_ratios.sh                      (the default problem: 60,000 generated inputs)
#        bench/model_ratios.sh --network /tmp/fash/neuron1024-l120.sdnn --neurons 1024 --layers 120 \
#          --input /tmp/fash/sparse-images-1024-6000.sdnn --inputs 6000   (archives from `sdnn convert`)
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/common.sh
sdnn=${SDNN:-./sdnn} rounds=${ROUNDS:-6}
trip_bin=${TMPDIR:-/tmp}/core_round_trip
[ -x "$trip_bin" ] || cc -O2 -o "$trip_bin" bench/core_round_trip.c
trip() { "$trip_bin" 2>&1 | sed -n 's/.*round trip \([0-9.]*\) ns.*/\1/p'; }
infer_s() {  # RANKS THREADS EXTRA... -- SDNN_ARGS...
  local ranks=$1 threads=$2; shift 2
  local line
  line=$($mpirun_cmd --bind-to none -np "$ranks" "$sdnn" "$@" --threads "$threads" -q --no-verify | grep -a '^summary ')
  field "$line" infer_s
}
echo "round trip_before_ns trip_after_ns data_2t model1x1_2t data_2r model1x2 model2x1 1x1/data 1x2/dd 2x1/dd"
rows=$(mktemp)
trap 'rm -f "$rows"' EXIT
for r in $(seq "$rounds"); do
  before=$(trip)
  d=$(infer_s 1 2 --strategy data "$@")
  m11=$(infer_s 1 2 --strategy model --grid 1x1 "$@")
  dd=$(infer_s 2 1 --strategy data "$@")
  m12=$(infer_s 2 1 --strategy model --grid 1x2 "$@")
  m21=$(infer_s 2 1 --strategy model --grid 2x1 "$@")
  after=$(trip)
  echo "$r $before $after $d $m11 $dd $m12 $m21" |
    awk '{ printf "%s %s %s %s %s %s %s %s %.3f %.3f %.3f\n", $1, $2, $3, $4, $5, $6, $7, $8, $5 / $4, $7 / $6, $8 / $6 }' |
    tee -a "$rows"
done
median() { sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
for k in 4 6 9 10 11; do printf '%s ' "$(awk -v k="$k" '{ print $k }' "$rows" | median)"; done |
  awk '{ printf "medians: data %s s (2 threads), data x data %s s (2 ranks); 1x1 / data %sx (target 1.3x), 1x2 / data x data %sx, 2x1 / data x data %sx (target 1.5x)\n", $1, $2, $3, $4, $5 }'
