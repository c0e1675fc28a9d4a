#!/usr/bin/env bash
# rank_study.sh: real rank scaling on one machine with a core for every rank (1 thread per rank,
# ranks bound to cores): data x data (csr), data x model (csc, grid 1 x P) and the pipeline (csr,
# grid 1 x P, its automatic split) at every rank count of RANKS, and data x model and the pipeline
# on the GRIDS at the largest rank count, on the generated default problem (1024 neurons x 120
# layers, INPUTS synthetic inputs), REPS times, the configurations alternating within each
# repetition. The same configurations simulated, and the two compared: bench/sim_rank_study.sh.
#
# Writes $OUT/rank_study.csv: rep,ranks,strategy,grid,infer_s,comm_ratio,imbalance,load1 (one row
# per run; load1: the load average just before it) and prints the medians.
# Usage: bench/rank_study.sh         (bench/rank_study.sh --list: the configurations, one per line:
#                                     ranks strategy format grid, - for data x data)
# Environment: OUT (default bench/out/rank-study), RANKS (default "1 2 4 8 16", those above the
#   cores (CORES, default nproc) left out), GRIDS (default "4x4 8x2 2x8"; each must hold the largest rank count), REPS
#   (default 3), INPUTS (default 60000), SDNN (default ./sdnn), MPIRUN (default mpirun
#   --map-by core --bind-to core, plus --allow-run-as-root as root).
# Measured on the lent 16-core machine (docs/simulation.md, "A machine with a core per rank").
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/common.sh  # field (its mpirun_cmd is replaced below)
cores=${CORES:-$(nproc)}
ranks=() grids=()
for p in ${RANKS:-1 2 4 8 16}; do [ "$p" -le "$cores" ] && ranks+=("$p"); done
largest=${ranks[${#ranks[@]}-1]}
for g in ${GRIDS:-4x4 8x2 2x8}; do [ $(( ${g%x*} * ${g#*x} )) -eq "$largest" ] && grids+=("$g"); done
list() {
  for p in "${ranks[@]}"; do
    echo "$p data csr -"; echo "$p model csc 1x$p"; echo "$p pipeline csr 1x$p"
  done
  for g in "${grids[@]}"; do echo "$largest model csc $g"; echo "$largest pipeline csr $g"; done
}
if [ "${1:-}" = --list ]; then list; exit 0; fi
out=${OUT:-bench/out/rank-study} reps=${REPS:-3} inputs=${INPUTS:-60000} sdnn=${SDNN:-./sdnn}
read -r -a mpirun_cmd <<< "${MPIRUN:-mpirun --map-by core --bind-to core $([ "$(id -u)" = 0 ] && echo --allow-run-as-root)}"
mkdir -p "$out"
csv=$out/rank_study.csv
echo "rep,ranks,strategy,grid,infer_s,comm_ratio,imbalance,load1" > "$csv"
for rep in $(seq "$reps"); do
  while read -r p strategy format grid; do
    load=$(cut -d' ' -f1 /proc/loadavg) grid_args=()
    [ "$strategy" = data ] || grid_args=(--grid "$grid")
    if ! "${mpirun_cmd[@]}" -np "$p" "$sdnn" --inputs "$inputs" --threads 1 --no-verify -q \
         --strategy "$strategy" --format "$format" "${grid_args[@]}" < /dev/null > "$out/run.log" 2>&1; then
      echo "rank_study.sh: $p ranks, $strategy $grid failed:" >&2; tail -5 "$out/run.log" >&2; exit 1
    fi
    line=$(grep '^summary ' "$out/run.log")
    echo "$rep,$p,$strategy,$grid,$(field "$line" infer_s),$(field "$line" comm_ratio),$(field "$line" imbalance),$load" >> "$csv"
  done < <(list)
  echo "rank_study.sh: repetition $rep of $reps done"
done
rm -f "$out/run.log"
echo "ranks strategy grid: median inference (s), communication/compute"
awk -F, 'NR > 1 { k = $2 " " $3 " " $4; t[k] = t[k] " " $5; c[k] = c[k] " " $6; if (!(k in seen)) { seen[k] = 1; order[++n] = k } }
  function med(s,   v, m, i, j, x) { m = split(s, v, " "); for (i = 2; i <= m; i++) { x = v[i]; for (j = i - 1; j >= 1 && v[j] + 0 > x + 0; j--) v[j + 1] = v[j]; v[j + 1] = x }
    return m % 2 ? v[(m + 1) / 2] : (v[m / 2] + v[m / 2 + 1]) / 2 }
  END { for (i = 1; i <= n; i++) printf "%s: %.4g %.3f\n", order[i], med(t[order[i]]), med(c[order[i]]) }' "$csv"
