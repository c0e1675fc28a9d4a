#!/usr/bin/env bash
# pipeline.sh: docs/pipeline.md's measurement. The official data (1200 inputs x 120 layers) at
# 1 to 4 ranks, 1 thread per rank, with data x data (P x 1), data x model (1 x P) and the layer
# pipeline (1 x P stages: the automatic split, balanced by a probe; split by layer count, given as
# --stage-layers; split by the layer times one earlier run measured, as that run printed; and 2 x 2
# at 4 ranks), runs of one rank count
# side by side, REPS times each (default 3), interleaved. Prints a Markdown table of medians (inference time, per-stage
# busy and bubble of the pipeline); raw rows in bench/out/pipeline.csv.
# Usage: [SDNN=path/to/sdnn] [SDNN_DATA=folder] bench/pipeline.sh [REPS]
set -euo pipefail
cd "$(dirname "$0")/.."
reps=${1:-3}
. bench/common.sh
mkdir -p bench/out
csv=bench/out/pipeline.csv
echo "ranks,strategy,grid,rep,infer_s,comm_ratio,network_mb,stage_busy_s,stage_bubble_s,stage_space_wait_s,stage_mb,stage_blocks" > "$csv"
official+=(--truth "$data/neuron1024-l120-categories-first1200.tsv")
for np in 1 2 3 4; do
  configs=("data ${np}x1" "model 1x${np}" "pipeline 1x${np}")
  if [ "$np" -gt 1 ]; then  # one run by count prints the split its measured layer times balance
    split=$($mpirun_cmd -np "$np" "${SDNN:-./sdnn}" "${official[@]}" --threads 1 -q --no-verify --strategy pipeline \
              --grid "1x$np" | sed -n 's/^stages balanced by .*--stage-layers //p')
    count=$(seq 1 $((np - 1)) | awk -v p="$np" '{ printf "%s%d", sep, $1 * 120 / p; sep = "," }')
    configs+=("pipeline 1x${np} $split" "pipeline 1x${np} $count count")
  fi
  [ "$np" = 4 ] && configs+=("pipeline 2x2")
  for rep in $(seq 1 "$reps"); do
    for config in "${configs[@]}"; do
      set -- $config
      extra=(--strategy "$1")
      [ "$1" != data ] && extra+=(--grid "$2")
      [ -n "${3:-}" ] && extra+=(--stage-layers "$3")
      line=$($mpirun_cmd -np "$np" "${SDNN:-./sdnn}" "${official[@]}" --threads 1 -q --no-verify "${extra[@]}" | grep '^summary ')
      [ "$(field "$line" challenge)" = PASS ] || { echo "pipeline.sh: $config at $np rank(s) did not pass" >&2; exit 1; }
      label=$1${3:+ split ${3//,/;}}; [ "${4:-}" = count ] && label="$1 by count ${3//,/;}"
      echo "$np,$label,$2,$rep,$(field "$line" infer_s),$(field "$line" comm_ratio),$(field "$line" network_mb),\"$(field "$line" stage_busy_s)\",\"$(field "$line" stage_bubble_s)\",\"$(field "$line" stage_space_wait_s)\",\"$(field "$line" stage_mb)\",\"$(field "$line" stage_blocks)\"" >> "$csv"
    done
  done
done
echo "| ranks | strategy | grid | inference s (median) | vs data x data | network MB on rank 0 | stage busy s (last run) | stage bubble s (last run) |"
echo "|---|---|---|---|---|---|---|---|"
python3 - "$csv" <<'PY'
import csv, statistics, sys
rows = list(csv.DictReader(open(sys.argv[1])))
groups = {}
for r in rows:
    groups.setdefault((int(r["ranks"]), r["strategy"], r["grid"]), []).append(r)
for (np, strategy, grid), rs in groups.items():
    median = statistics.median(float(r["infer_s"]) for r in rs)
    base = statistics.median(float(r["infer_s"]) for r in groups[(np, "data", f"{np}x1")])
    last = rs[-1]
    print(f"| {np} | {strategy} | {grid} | {median:.3f} | {median / base:.2f}x | {last['network_mb']} | "
          f"{last['stage_busy_s'] or '-'} | {last['stage_bubble_s'] or '-'} |")
PY
