#!/usr/bin/env bash
# default_rates.sh: the rate of every format x parallelism combination with 1 and 2 threads on
# the default problem (1024 neurons, 120 layers, 60,000 generated inputs), one process, REPS
# runs each (alternating combinations, so that machine noise spreads evenly), medians.
# Writes bench/out/default_rates.csv (every run) and prints a Markdown table of the medians.
# Usage: [SDNN=path/to/sdnn] bench/default_rates.sh [REPS] [extra sdnn options...]
set -euo pipefail
cd "$(dirname "$0")/.."
reps=${1:-5}; shift || true
mkdir -p bench/out
csv=bench/out/default_rates.csv
echo "format,parallel,threads,rep,infer_s,rate,categories" > "$csv"
combos=("csr data" "csc data" "csc model")
for rep in $(seq 1 "$reps"); do
  for combo in "${combos[@]}"; do
    for threads in 1 2; do
      set -- $combo
      line=$("${SDNN:-./sdnn}" --no-verify -q --format "$1" --parallel "$2" --threads "$threads" "${@:3}" | grep '^summary ')
      get() { echo "$line" | tr ' ' '\n' | sed -n "s/^$1=//p"; }
      echo "$1,$2,$threads,$rep,$(get infer_s),$(get rate),$(get categories)" >> "$csv"
    done
  done
done
echo "| format | parallel | threads | median inference (s) | median rate (edges/s) | speed-up 1 -> 2 threads |"
echo "|---|---|---|---|---|---|"
python3 - "$csv" <<'PY'
import csv, statistics, sys
rows = list(csv.DictReader(open(sys.argv[1])))
groups, rates = {}, {}
for r in rows:
    key = (r["format"], r["parallel"], r["threads"])
    groups.setdefault(key, []).append(float(r["infer_s"]))
    rates.setdefault(key, []).append(float(r["rate"]))
for (f, p, t), times in groups.items():
    med = statistics.median(times)
    one = statistics.median(groups[(f, p, "1")])
    rate = statistics.median(rates[(f, p, t)])
    print(f"| {f} | {p} | {t} | {med:.3f} | {rate:.3e} | {one / med:.2f}x |")
PY
