#!/usr/bin/env bash
# scaling_sim.sh: the seed's rank-scaling study, simulated: sdnn built with SimGrid's SMPI (make sim)
# run by smpirun on bench/platforms/omnipath_32x28.xml (32 nodes x 28 cores, Omni-Path, fat tree),
# 1 to 896 ranks packed 28 to a node, 1 thread per rank. Every rank computes for real on this
# machine (timed by SMPI in thread CPU time, converted with smpi/host-speed), so the sum over ranks
# is what this machine pays; all simulated ranks live in one process, so memory is their sum too.
#
# Runs, per problem, rank count and hashing mode (none, input, network, both):
#   data x data   csr, --share-network (one copy of the network per simulated node)
#   data x model  csc, several D x M grids per rank count: the squarest (D <= M), nodes x ranks per
#                 node (column blocks inside a node, row groups across nodes) and 1 x P up to 64 ranks
# Problems (binary archives made once by sdnn generate/convert in $OUT/data):
#   official  the official 1200 inputs, 1024 neurons x 120 layers (../shared/data/graphchallenge)
#   default   the default problem: 1024 x 120 generated network (seed 42), 60,000 synthetic inputs
#   n4096     4096 neurons x 120 layers (generated, seed 42), 6000 inputs: the first 6000
#             Fashion-MNIST training images when $IDX exists, synthetic inputs (seed 42) otherwise
# Writes $OUT/scaling_sim.csv, one row per run:
#   problem,strategy,format,grid,hash,ranks,nodes,infer_s,speedup,efficiency,imbalance,
#   comm_compute,bytes,messages,read_s,categories,checksum,challenge,peak_rss_mb,sim_wall_s
#   (speed-up and efficiency against the 1-rank run of the same problem, strategy and hashing;
#   imbalance = max over mean compute time; comm_compute = communication over compute summed over
#   ranks; bytes and messages: MPI_Get traffic summed over ranks (sdnn --report), the per-layer
#   allreduce not counted; peak_rss_mb is the simulator's whole process; sim_wall_s is what the
#   simulation took on this machine), and the plots (gnuplot) $PLOTS/sim_scaling_time.png,
#   sim_scaling_efficiency.png and sim_scaling_comm.png.
#
# Usage: bench/scaling_sim.sh [--quick] [--plot-only]
#   --quick      the official problem on 1, 4, 28 and 56 ranks (one and two nodes), data x data and
#                the squarest data x model grid, hashing none and both: a few minutes
#   --plot-only  the plots again from the CSV of the last study
# Environment: OUT (default bench/out/sim, bench/out/sim-quick with --quick), PLOTS (default docs,
#   $OUT with --quick), RANKS, PROBLEMS, HASHES, STRATEGIES, GRIDS (kinds of model grid: square,
#   nodes, row) (override the lists above),
#   HOST_SPEED (flop/s of this machine's core; default measured by bench/platforms/host_speed.sh),
#   BUDGET (seconds: start no run after this much time; the runs left are listed), APPEND=1 (keep
#   the rows of an earlier study in $OUT and add these), RUN_LIMIT
#   (seconds per run before it is abandoned, default 1800), IDX (Fashion-MNIST training images,
#   default /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz), NICE (default 5).
set -euo pipefail
cd "$(dirname "$0")/.."
quick=0 plot_only=0
for arg in "$@"; do
  case $arg in
    --quick) quick=1 ;;
    --plot-only) plot_only=1 ;;
    *) echo "usage: bench/scaling_sim.sh [--quick] [--plot-only]" >&2; exit 2 ;;
  esac
done
if [ "$quick" = 1 ]; then
  out=${OUT:-bench/out/sim-quick} plots=${PLOTS:-$out}
  ranks=${RANKS:-"1 4 28 56"} problems=${PROBLEMS:-official} hashes=${HASHES:-"none both"} grid_kinds="square"
else
  out=${OUT:-bench/out/sim} plots=${PLOTS:-docs}
  ranks=${RANKS:-"1 2 4 8 16 32 64 128 256 512 896"} problems=${PROBLEMS:-"official default n4096"}
  hashes=${HASHES:-"none input network both"} grid_kinds="square nodes row"
fi
strategies=${STRATEGIES:-"data model"} grid_kinds=${GRIDS:-$grid_kinds}
platform=bench/platforms/omnipath_32x28.xml cores_per_node=28 nodes_total=32
data=${DATA:-../shared/data/graphchallenge}
idx=${IDX:-/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz}
budget=${BUDGET:-0} run_limit=${RUN_LIMIT:-1800} nice_level=${NICE:-5}
csv=$out/scaling_sim.csv
mkdir -p "$out" "$plots"

plot() {
  command -v gnuplot > /dev/null || { echo "scaling_sim.sh: gnuplot not installed (apt-get install gnuplot-nox): no plots"; return 0; }
  local series=$out/plot_series.dat
  # One block per (problem, strategy, grid kind, hash) with hash none and both: ranks, time, efficiency,
  # comm/compute, imbalance. The data strategy's line, and per model grid kind the best grid of that kind.
  awk -F, 'NR > 1 && $8 != "" && ($5 == "none" || $5 == "both") {
      kind = ($2 == "data") ? "data x data" : "data x model " $21
      key = $1 "|" kind " (hash " $5 ")"
      print key "|" $6 "|" $8 "|" $10 "|" $12 "|" $11
    }' "$csv" | sort -t'|' -k1,1 -k2,2 -k3,3n > "$series.raw"
  : > "$series"
  local titles=() key last=""
  while IFS='|' read -r problem label r t e c i; do
    key="$problem|$label"
    if [ "$key" != "$last" ]; then
      [ -n "$last" ] && printf '\n\n' >> "$series"
      titles+=("$key"); last=$key
    fi
    echo "$r $t $e $c $i" >> "$series"
  done < "$series.raw"
  [ ${#titles[@]} -gt 0 ] || { echo "scaling_sim.sh: nothing to plot"; return 0; }
  local problem_list
  problem_list=$(printf '%s\n' "${titles[@]}" | cut -d'|' -f1 | awk '!seen[$0]++')
  local n_problems
  n_problems=$(echo "$problem_list" | wc -l)
  for what in time efficiency comm; do
    local column ylabel logy
    case $what in
      time) column=2 ylabel="simulated inference time (s)" logy="set logscale y" ;;
      efficiency) column=3 ylabel="parallel efficiency (speed-up / ranks)" logy="set yrange [0:1.2]" ;;
      comm) column=4 ylabel="communication / compute (model strategy)" logy="set logscale y" ;;
    esac
    {
      echo "set terminal pngcairo noenhanced size $((560 * n_problems)),480 font ',9'"
      echo "set output '$plots/sim_scaling_$what.png'"
      echo "set multiplot layout 1,$n_problems title 'sdnn under SMPI: Omni-Path 32 x 28 cores, 1 thread per rank'"
      echo "set logscale x 2; set xlabel 'ranks (28 per node)'; set ylabel '$ylabel'; set key top left font ',7'; set grid"
      while read -r problem; do
        echo "set title '$problem'; unset logscale y; set autoscale y; $logy"
        local first=1 index=0 line=""
        for t in "${titles[@]}"; do
          if [ "${t%%|*}" = "$problem" ] && { [ "$what" != comm ] || [[ "$t" == *model* ]]; }; then
            [ "$first" = 1 ] && line="plot " || line="$line, "
            line="$line'$series' index $index using 1:$column with linespoints title '${t#*|}'"
            first=0
          fi
          index=$((index + 1))
        done
        [ -n "$line" ] && echo "$line" ||
          echo "set label 1 'not run' at graph 0.4,0.5; unset logscale y; set yrange [0:1]; plot -1 notitle; unset label 1"
      done <<< "$problem_list"
      echo "unset multiplot"
    } > "$out/plot_$what.gp"
    gnuplot "$out/plot_$what.gp" && echo "plot: $plots/sim_scaling_$what.png"
  done
}

if [ "$plot_only" = 1 ]; then plot; exit 0; fi

command -v smpirun > /dev/null || { echo "scaling_sim.sh: smpirun not installed (make sim-deps)" >&2; exit 1; }
make --no-print-directory sim sdnn > /dev/null
sim=build/sim/sdnn
host_speed=${HOST_SPEED:-$(bench/platforms/host_speed.sh)}
echo "scaling_sim.sh: host speed ${host_speed} flop/s (one core of this machine, bench/platforms/host_speed.sh)"

# Problems as binary archives, made once.
make_problem() {  # NAME: sets problem_args
  local name=$1 dir=$out/data/$1
  mkdir -p "$dir"
  case $name in
    official)
      [ -f "$dir/neuron1024-l120.sdnn" ] || ./sdnn convert --neurons 1024 --network "$data/neuron1024" --layers 120 \
        --input "$data/sparse-images-1024-first1200.tsv" --inputs 1200 --out "$dir" > /dev/null
      problem_args=(--network "$dir/neuron1024-l120.sdnn" --input "$dir/sparse-images-1024-1200.sdnn" --neurons 1024
                    --layers 120 --inputs 1200 --truth "$data/neuron1024-l120-categories-first1200.tsv") ;;
    default)
      if [ ! -f "$dir/neuron1024-l120.sdnn" ]; then
        ./sdnn generate --neurons 1024 --layers 120 --seed 42 --out "$dir/tsv" --inputs synthetic --count 60000 > /dev/null
        ./sdnn convert --neurons 1024 --network "$dir/tsv/neuron1024" --layers 120 \
          --input "$dir/tsv/sparse-images-1024.tsv" --inputs 60000 --out "$dir" > /dev/null
        rm -rf "$dir/tsv"
      fi
      problem_args=(--network "$dir/neuron1024-l120.sdnn" --input "$dir/sparse-images-1024-60000.sdnn" --neurons 1024
                    --layers 120 --inputs 60000) ;;
    n4096)
      local inputs=synthetic
      [ -f "$idx" ] && inputs=$idx
      if [ ! -f "$dir/neuron4096-l120.sdnn" ]; then
        ./sdnn generate --neurons 4096 --layers 120 --seed 42 --out "$dir/tsv" --inputs "$inputs" --count 6000 > /dev/null
        ./sdnn convert --neurons 4096 --network "$dir/tsv/neuron4096" --layers 120 \
          --input "$dir/tsv/sparse-images-4096.tsv" --inputs 6000 --out "$dir" > /dev/null
        rm -rf "$dir/tsv"
        echo "$inputs" > "$dir/inputs_from"
      fi
      problem_args=(--network "$dir/neuron4096-l120.sdnn" --input "$dir/sparse-images-4096-6000.sdnn" --neurons 4096
                    --layers 120 --inputs 6000) ;;
    *) echo "scaling_sim.sh: unknown problem '$name'" >&2; exit 2 ;;
  esac
}

grids_for() {  # P: the model grids D x M of P ranks, one per kind in $grid_kinds ("kind:DxM")
  local p=$1 d=1 nodes
  while [ $((d * 2 * d * 2)) -le "$p" ] && [ $((p % (d * 2))) -eq 0 ]; do d=$((d * 2)); done
  [ "$p" -eq 896 ] && d=28  # 896 = 28 x 32, the squarest
  local seen=""
  for kind in $grid_kinds; do
    local g=""
    case $kind in
      square) g="${d}x$((p / d))" ;;
      nodes) nodes=$(( (p + cores_per_node - 1) / cores_per_node ))
             [ "$nodes" -gt 1 ] && [ $((p % nodes)) -eq 0 ] && g="${nodes}x$((p / nodes))" ;;
      row) [ "$p" -le 64 ] && g="1x$p" ;;
    esac
    [ -n "$g" ] && [[ " $seen " != *" $g "* ]] && { echo "$kind:$g"; seen="$seen $g"; }
  done
}

hostfile=$out/hostfile
for n in $(seq 0 $((nodes_total - 1))); do echo "node-$n:$cores_per_node"; done > "$hostfile"
header="problem,strategy,format,grid,hash,ranks,nodes,infer_s,speedup,efficiency,imbalance,comm_compute,bytes,messages,read_s,categories,checksum,challenge,peak_rss_mb,sim_wall_s,grid_kind"
echo "$header" > "$csv.runs"
[ "${APPEND:-0}" = 1 ] && [ -f "$csv" ] && tail -n +2 "$csv" >> "$csv.runs"
value() { grep '^summary ' "$1" | tr ' ' '\n' | sed -n "s/^$2=//p"; }
start=$SECONDS skipped=()
for problem in $problems; do
  make_problem "$problem"
  for p in $ranks; do
    for strategy in $strategies; do
      if [ "$strategy" = data ]; then configs=("data:${p}x1"); else mapfile -t configs < <(grids_for "$p"); fi
      for config in "${configs[@]}"; do
        kind=${config%%:*} grid=${config#*:}
        for hash in $hashes; do
          name="$problem $strategy ${grid} hash $hash, $p ranks"
          if [ "$budget" -gt 0 ] && [ $((SECONDS - start)) -ge "$budget" ]; then skipped+=("$name"); continue; fi
          if [ "$strategy" = data ]; then args=(--strategy data --format csr --share-network)
          else args=(--strategy model --format csc --grid "$grid"); fi
          run_start=$SECONDS
          log=$out/run.log
          if ! timeout "$run_limit" nice -n "$nice_level" smpirun -np "$p" -platform "$platform" -hostfile "$hostfile" \
                 --cfg=smpi/host-speed:"${host_speed}f" --log=root.thresh:warning "$sim" "${problem_args[@]}" \
                 "${args[@]}" --hash "$hash" --threads 1 --no-verify -q --report "$out/report.json" > "$log" 2>&1; then
            echo "FAILED or over ${run_limit} s: $name (log: $log)"; skipped+=("$name (failed or over ${run_limit} s)")
            tail -5 "$log"; continue
          fi
          wall=$((SECONDS - run_start))
          traffic=$(awk -F, 'NR > 1 && $2 == "all" { b += $9; m += $10 } END { printf "%.0f,%.0f", b, m }' "$out/report.csv")
          nodes=$(( (p + cores_per_node - 1) / cores_per_node ))
          echo "$problem,$strategy,$(value "$log" format),$grid,$hash,$p,$nodes,$(value "$log" infer_s),,,$(value "$log" imbalance),$(value "$log" comm_ratio),$traffic,$(value "$log" read_s),$(value "$log" categories),$(value "$log" checksum),$(value "$log" challenge),$(value "$log" peak_rss_mb),$wall,$kind" >> "$csv.runs"
          echo "$name: $(value "$log" infer_s) s simulated (imbalance $(value "$log" imbalance), comm/compute $(value "$log" comm_ratio), challenge $(value "$log" challenge)); simulation took ${wall} s"
        done
      done
    done
  done
done

# Speed-up and efficiency against the 1-rank run of the same problem, strategy and hashing.
awk -F, -v OFS=, 'NR == FNR { if (FNR > 1 && $6 == 1) base[$1 "|" $2 "|" $5] = $8; next }
  FNR == 1 { print; next }
  { b = base[$1 "|" $2 "|" $5]; if (b != "" && $8 > 0) { $9 = sprintf("%.3f", b / $8); $10 = sprintf("%.3f", b / $8 / $6) } print }' \
  "$csv.runs" "$csv.runs" > "$csv"
rm -f "$csv.runs"
echo "table: $csv ($(($(wc -l < "$csv") - 1)) runs, $((SECONDS - start)) s)"
if [ ${#skipped[@]} -gt 0 ]; then
  printf '%s\n' "${skipped[@]}" > "$out/not_run.txt"
  echo "not run (budget or failure): ${#skipped[@]}, listed in $out/not_run.txt"
fi
plot
