#!/usr/bin/env bash
# sim_rank_study.sh: bench/rank_study.sh's configurations simulated by SimGrid's SMPI (build/sim/sdnn,
# make sim) on PLATFORM, every rank packed on its one host (hostfile node-0:P), the computations
# timed here in CPU time and converted with smpi/host-speed (this machine's, bench/platforms/
# host_speed.sh), REPS times; with REAL (one or more rank_study.csv of real runs on the machine that
# PLATFORM describes), both side by side: the simulator asked to predict a machine it did not run on.
#
# Writes $OUT/sim_rank_study.csv (the columns of rank_study.csv) and, with REAL,
# $OUT/sim_rank_study.md and $OUT/sim_rank_study.png (gnuplot, gnuplot-nox installed when missing:
# time against ranks, real median and simulated, per strategy, grids 1 x P); per configuration the real median (all REAL files pooled) with its range,
# the simulated median and the error (simulated - real) / real; then each time as a multiple of
# data x data's at the same rank count, real and simulated, and the error between the two: SMPI
# gives every simulated core the speed of one core running alone, while P busy cores of a real
# node run slower each (clock, shared caches, memory), which data x data, sending nothing, shows
# alone; the multiples set that node factor aside and keep what the strategies add.
# Environment: OUT (default bench/out/sim-rank-study), PLATFORM (default
#   bench/platforms/lent_16core.xml), RANKS, GRIDS, INPUTS (as rank_study.sh; RANKS is not capped
#   by this machine's cores), REPS (default 1), HOST_SPEED (default host_speed.sh's), REAL (default
#   none), TABLE_ONLY=1 (no runs: the table again from $OUT/sim_rank_study.csv).
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/common.sh  # field
out=${OUT:-bench/out/sim-rank-study} platform=${PLATFORM:-bench/platforms/lent_16core.xml} reps=${REPS:-1}
inputs=${INPUTS:-60000}
if [ "${TABLE_ONLY:-0}" != 1 ]; then
  command -v smpirun > /dev/null || { echo "sim_rank_study.sh: smpirun not installed (make sim-deps)" >&2; exit 1; }
  make --no-print-directory sim > /dev/null
  host_speed=${HOST_SPEED:-$(bench/platforms/host_speed.sh)}
  echo "sim_rank_study.sh: host speed ${host_speed}; platform $platform; load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
fi
mkdir -p "$out"
csv=$out/sim_rank_study.csv
[ "${TABLE_ONLY:-0}" = 1 ] && reps=0 || echo "rep,ranks,strategy,grid,infer_s,comm_ratio,imbalance,load1" > "$csv"
# The configurations of rank_study.sh, every rank count kept (nproc here says nothing of PLATFORM).
configs=$(CORES=1000000 bash bench/rank_study.sh --list)
for rep in $(seq "$reps"); do
  while read -r p strategy format grid; do
    grid_args=()
    [ "$strategy" = data ] || grid_args=(--grid "$grid")
    echo "node-0:$p" > "$out/hostfile"
    load=$(cut -d' ' -f1 /proc/loadavg)
    if ! smpirun -np "$p" -platform "$platform" -hostfile "$out/hostfile" --cfg=smpi/host-speed:"${host_speed}f" \
         --log=root.thresh:warning build/sim/sdnn --inputs "$inputs" --threads 1 --no-verify -q \
         --strategy "$strategy" --format "$format" "${grid_args[@]}" < /dev/null > "$out/run.log" 2>&1; then
      echo "sim_rank_study.sh: $p ranks, $strategy $grid failed:" >&2; tail -5 "$out/run.log" >&2; exit 1
    fi
    line=$(grep '^summary ' "$out/run.log")
    echo "$rep,$p,$strategy,$grid,$(field "$line" infer_s),$(field "$line" comm_ratio),$(field "$line" imbalance),$load" >> "$csv"
  done <<< "$configs"
  echo "sim_rank_study.sh: repetition $rep of $reps done"
done
rm -f "$out/run.log" "$out/hostfile"
[ -n "${REAL:-}" ] || exit 0
# Medians per configuration, real (pooled) and simulated, then the table.
{
  for f in $REAL; do tail -n +2 "$f" | sed 's/^/real,/'; done
  tail -n +2 "$csv" | sed 's/^/sim,/'
} | awk -F, '
  function med(s,   v, m, i, j, x) { m = split(s, v, " "); for (i = 2; i <= m; i++) { x = v[i]; for (j = i - 1; j >= 1 && v[j] + 0 > x + 0; j--) v[j + 1] = v[j]; v[j + 1] = x }
    lo = v[1]; hi = v[m]; return m % 2 ? v[(m + 1) / 2] : (v[m / 2] + v[m / 2 + 1]) / 2 }
  { k = $3 " " $4 " " $5; t[$1, k] = t[$1, k] " " $6; c[$1, k] = c[$1, k] " " $7; if (!(k in seen)) { seen[k] = 1; order[++n] = k } }
  END {
    for (i = 1; i <= n; i++) { k = order[i]; split(k, w, " "); if (w[2] == "data" && ((("real", k) in t)) && ((("sim", k) in t))) { dr[w[1]] = med(t["real", k]); ds[w[1]] = med(t["sim", k]) } }
    print "| ranks | strategy | grid | real (s), median [range] | simulated (s) | error | x data x data, real | simulated | error | comm/compute real | simulated |"
    print "|---|---|---|---|---|---|---|---|---|---|---|"
    for (i = 1; i <= n; i++) { k = order[i]; if (!((("real", k) in t)) || !((("sim", k) in t))) continue
      split(k, w, " "); r = med(t["real", k]); rlo = lo; rhi = hi; s = med(t["sim", k]); xr = r / dr[w[1]]; xs = s / ds[w[1]]
      printf "| %s | %s | %s | %.3f [%.3f, %.3f] | %.3f | %+.0f%% | %.2f | %.2f | %+.0f%% | %.3f | %.3f |\n", w[1], (w[2] == "data" ? "data x data" : w[2] == "model" ? "data x model" : "pipeline"),
        w[3], r, rlo, rhi, s, 100 * (s - r) / r, xr, xs, 100 * (xs - xr) / xr, med(c["real", k]), med(c["sim", k]) } }' > "$out/sim_rank_study.md"
cat "$out/sim_rank_study.md"
# The plot: one block per series (strategy x real/simulated), data x data and the 1 x P grids.
command -v gnuplot > /dev/null || make --no-print-directory plot-deps > /dev/null
awk -F'|' 'NR > 2 { g = $4; gsub(/ /, "", g); if (g != "-" && g !~ /^1x/) next
    k = $3; sub(/^ +/, "", k); sub(/ +$/, "", k); split($5, r, " ")
    real[k] = real[k] sprintf("%d %s\n", $2, r[1]); sim[k] = sim[k] sprintf("%d %s\n", $2, $6) }
  END { n = split("data x data,pipeline,data x model", order, ",")
    for (i = 1; i <= n; i++) { k = order[i]; if (!(k in real)) continue
      printf "\"%s, real\"\n%s\n\n\"%s, simulated\"\n%s\n\n", k, real[k], k, sim[k] } }' "$out/sim_rank_study.md" > "$out/plot.dat"
series=$(grep -c '^"' "$out/plot.dat")
gnuplot <<EOF
set terminal pngcairo size 900,560 font ",10" noenhanced
set output "$out/sim_rank_study.png"
set title "real (solid) and simulated (dashed) inference time, default problem ($inputs inputs), 1 thread per rank\nplatform $(basename "$platform")"
set key below
set grid
set logscale xy 2
set xlabel "ranks (data x data; data x model and pipeline on grid 1 x P)"
set ylabel "inference (s)"
plot for [i=0:$((series - 2)):2] "$out/plot.dat" index i using 1:2 with linespoints lw 2 lt (i / 2 + 1) dt 1 title columnheader(1), \
     for [i=1:$((series - 1)):2] "$out/plot.dat" index i using 1:2 with linespoints lw 2 lt ((i - 1) / 2 + 1) dt 2 title columnheader(1)
EOF
rm -f "$out/plot.dat"
