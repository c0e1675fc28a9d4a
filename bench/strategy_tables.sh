#!/usr/bin/env bash
# strategy_tables.sh: the tables of docs/strategies.md for the MPI strategies, measured on this machine.
#  1. data x data: rate and imbalance for 1, 2 and 4 ranks x each hashing mode, on the default
#     problem and on the official data (1200 inputs x 120 layers), 1 thread per rank;
#  2. data x model: communication/compute ratio, rate, columns and bytes pulled per rank, for
#     grids of 2 and 4 ranks, with and without network hashing and overlap.
# REPS runs each (default 3), medians. Prints Markdown; raw rows in bench/out/strategy_tables.csv.
# Usage: [SDNN=path/to/sdnn] bench/strategy_tables.sh [REPS]
set -euo pipefail
cd "$(dirname "$0")/.."
reps=${1:-3}
. bench/common.sh
mkdir -p bench/out
csv=bench/out/strategy_tables.csv
echo "problem,strategy,grid,ranks,hash,overlap,rep,infer_s,rate,imbalance,comm_ratio,pulled_columns,bytes_pulled" > "$csv"
measure() {  # PROBLEM STRATEGY GRID NP HASH OVERLAP ARGS...
  local problem=$1 strategy=$2 grid=$3 np=$4 hash=$5 overlap=$6; shift 6
  local extra=()
  [ "$strategy" = model ] && extra+=(--strategy model --grid "$grid")
  [ "$overlap" = no ] && extra+=(--no-overlap)
  for rep in $(seq 1 "$reps"); do
    $mpirun_cmd -np "$np" "${SDNN:-./sdnn}" "$@" --hash "$hash" --threads 1 -q --no-verify "${extra[@]}" \
      --report bench/out/last_report.json > bench/out/last_run.txt 2>&1 || { cat bench/out/last_run.txt; exit 1; }
    local line; line=$(grep -a '^summary ' bench/out/last_run.txt)
    get() { echo "$line" | tr ' ' '\n' | sed -n "s/^$1=//p"; }
    local pulled; pulled=$(python3 -c "import json; r=json.load(open('bench/out/last_report.json'))['ranks']; print(max(x['pulled_columns'] for x in r), max(x['bytes_pulled'] for x in r))")
    echo "$problem,$strategy,$grid,$np,$hash,$overlap,$rep,$(get infer_s),$(get rate),$(get imbalance),$(get comm_ratio),${pulled/ /,}" >> "$csv"
  done
}
for np in 1 2 4; do
  for hash in none input network both; do
    measure default data "${np}x1" "$np" "$hash" yes --inputs 60000
    [ -d "$data/neuron1024" ] && measure official data "${np}x1" "$np" "$hash" yes "${official[@]}"
  done
done
for grid in 1x2 2x1 1x4 2x2; do
  np=$(( ${grid%x*} * ${grid#*x} ))
  for hash in none network; do
    measure default-6000 model "$grid" "$np" "$hash" yes --inputs 6000
  done
  measure default-6000 model "$grid" "$np" none no --inputs 6000
  [ -d "$data/neuron1024" ] && measure official model "$grid" "$np" none yes "${official[@]}"
done
python3 - "$csv" <<'PY'
import csv, statistics, sys
rows = list(csv.DictReader(open(sys.argv[1])))
groups = {}
for r in rows:
    groups.setdefault((r["problem"], r["strategy"], r["grid"], r["ranks"], r["hash"], r["overlap"]), []).append(r)
def med(rs, key): return statistics.median(float(r[key]) for r in rs)
print("Data x data (1 thread per rank; 4 ranks oversubscribe the 2 cores):\n")
print("| problem | ranks | hash | median inference (s) | median rate (edges/s) | imbalance |")
print("|---|---|---|---|---|---|")
for k, rs in groups.items():
    if k[1] == "data":
        print(f"| {k[0]} | {k[3]} | {k[4]} | {med(rs,'infer_s'):.3f} | {med(rs,'rate'):.3e} | {med(rs,'imbalance'):.3f} |")
print("\nData x model (1 thread per rank):\n")
print("| problem | grid | hash | overlap | median inference (s) | median rate (edges/s) | comm/compute | columns pulled per rank (all layers) | MB pulled per rank |")
print("|---|---|---|---|---|---|---|---|---|")
for k, rs in groups.items():
    if k[1] == "model":
        print(f"| {k[0]} | {k[2]} | {k[4]} | {k[5]} | {med(rs,'infer_s'):.3f} | {med(rs,'rate'):.3e} | {med(rs,'comm_ratio'):.3f} | {int(med(rs,'pulled_columns'))} | {med(rs,'bytes_pulled')/1e6:.1f} |")
PY
