#!/usr/bin/env bash
# sim_validate.sh: how close SimGrid's SMPI comes to real runs on this machine. The same runs real
# (build/release, mpirun) and simulated (build/sim, smpirun on bench/platforms/this_machine.xml:
# one host, 2 cores, its shared-memory figures measured here), side by side in one script:
#   program  the official 1200 inputs (1024 neurons x 120 layers; PROBLEM=default: the generated
#            default problem, INPUTS inputs, a run some 20 times longer, so that the OS's time
#            slices weigh less in the oversubscribed runs), 1 thread per rank, on 1, 2 and
#            4 ranks (4: oversubscribed, 2 ranks per core, in both), data x data (csr), data x
#            model (csc, grid 1 x P) and the pipeline (csr, grid 1 x P, its automatic split):
#            median inference time and communication/compute of REPS runs
#   mpi      the MPI microbenchmarks of bench/mpi (2 ranks): MPI_Get + flush latency 8 B to 64 MB
#            (BM_GetLatency) and one data x model layer's gets and compute (BM_ModelLayer), medians
#            of 3 repetitions
# Writes $OUT/sim_validate.csv (kind,case,metric,real,simulated,error_pct) and the same as a
# Markdown table, $OUT/sim_validate.md; error = (simulated - real) / real. Gaps and their causes:
# docs/simulation.md.
# Usage: bench/sim_validate.sh        Environment: OUT (default bench/out/sim-validate), REPS
#   (default 3), RANKS (default "1 2 4"), PARTS (default "program mpi": which half to run), HOST_SPEED (default bench/platforms/host_speed.sh's),
#   DATA (default ../shared/data/graphchallenge), PROBLEM (official or default; default official),
#   INPUTS (PROBLEM=default: its inputs, default 60000), ROUND_TRIP (a built bench/core_round_trip.c:
#   each real run labelled in labels.csv).
set -euo pipefail
cd "$(dirname "$0")/.."
out=${OUT:-bench/out/sim-validate} reps=${REPS:-3} ranks=${RANKS:-"1 2 4"} parts=${PARTS:-"program mpi"}
problem=${PROBLEM:-official} inputs=${INPUTS:-60000}
data=${DATA:-../shared/data/graphchallenge}
platform=bench/platforms/this_machine.xml
mkdir -p "$out"
command -v smpirun > /dev/null || { echo "sim_validate.sh: smpirun not installed (make sim-deps)" >&2; exit 1; }
make --no-print-directory sim sdnn build/release/sdnn_bench_mpi > /dev/null
host_speed=${HOST_SPEED:-$(bench/platforms/host_speed.sh)}
mpirun_cmd=(mpirun --oversubscribe --bind-to none)
[ "$(id -u)" = 0 ] && mpirun_cmd+=(--allow-run-as-root)
smpirun_cmd() {  # RANKS: smpirun on this machine's platform, ranks packed on its one host
  echo "node-0:$1" > "$out/hostfile"
  echo smpirun -np "$1" -platform "$platform" -hostfile "$out/hostfile" --cfg=smpi/host-speed:"${host_speed}f" \
    --log=root.thresh:warning
}
case $problem in
  official) official=(--network "$data/neuron1024" --neurons 1024 --layers 120 --inputs 1200
                      --input "$data/sparse-images-1024-first1200.tsv" --threads 1 --no-verify -q)
            problem_name="official 1200" ;;
  default) official=(--inputs "$inputs" --threads 1 --no-verify -q)
           problem_name="default $inputs" ;;
  *) echo "sim_validate.sh: PROBLEM is official or default, not '$problem'" >&2; exit 2 ;;
esac
value() { grep '^summary ' "$1" | tr ' ' '\n' | sed -n "s/^$2=//p"; }
median() { sort -g | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
rows=$out/rows.csv
: > "$rows"
add() {  # KIND CASE METRIC REAL SIMULATED
  awk -v OFS=, -v k="$1" -v c="$2" -v m="$3" -v r="$4" -v s="$5" \
    'BEGIN { e = (r > 0) ? sprintf("%+.0f", 100 * (s - r) / r) : ""; print k, c, m, r, s, e }' >> "$rows"
}
# ROUND_TRIP: a core_round_trip binary (bench/core_round_trip.c): each real run is labelled by
# the cache line's round trip between cores 0 and 1 before and after it ($out/labels.csv), since
# on some KVM guests the host moves the vCPUs between cores that share a cache and cores that
# do not, which data x model's real times follow (docs/strategies.md, issue 10, eighth pass).
labels=$out/labels.csv
round_trip() { if [ -n "${ROUND_TRIP:-}" ]; then "$ROUND_TRIP" 2>&1 | sed -n 's/.*round trip \([0-9.]*\) ns.*/\1/p'; fi; }
if [ -n "${ROUND_TRIP:-}" ]; then echo "case,rep,round_trip_before_ns,round_trip_after_ns,real_infer_s" > "$labels"; fi
echo "sim_validate.sh: host speed ${host_speed}; load average before: $(cut -d' ' -f1-3 /proc/loadavg)"

# --- the program: real and simulated runs alternate, REPS times.
[[ " $parts " == *" program "* ]] || ranks=""
for p in $ranks; do
  for strategy in data model pipeline; do
    case $strategy in
      data) args=(--strategy data --format csr) label="data x data" ;;
      model) args=(--strategy model --format csc --grid "1x$p") label="data x model" ;;
      pipeline) args=(--strategy pipeline --format csr --grid "1x$p") label="pipeline 1 x P" ;;
    esac
    : > "$out/real_t"; : > "$out/sim_t"; : > "$out/real_c"; : > "$out/sim_c"
    for rep in $(seq "$reps"); do
      trip=$(round_trip)
      "${mpirun_cmd[@]}" -np "$p" ./sdnn "${official[@]}" "${args[@]}" > "$out/real.log" 2>&1
      value "$out/real.log" infer_s >> "$out/real_t"; value "$out/real.log" comm_ratio >> "$out/real_c"
      if [ -n "$trip" ]; then
        echo "$problem_name; $p rank(s); $label,$rep,$trip,$(round_trip),$(value "$out/real.log" infer_s)" >> "$labels"
      fi
      $(smpirun_cmd "$p") build/sim/sdnn "${official[@]}" "${args[@]}" > "$out/sim.log" 2>&1
      value "$out/sim.log" infer_s >> "$out/sim_t"; value "$out/sim.log" comm_ratio >> "$out/sim_c"
    done
    name="$problem_name; $p rank(s); $label"
    add program "$name" "inference (s)" "$(median < "$out/real_t")" "$(median < "$out/sim_t")"
    [ "$strategy" != data ] && [ "$p" -gt 1 ] &&
      add program "$name" "communication/compute" "$(median < "$out/real_c")" "$(median < "$out/sim_c")"
    echo "done: $name"
  done
done

# --- the MPI microbenchmarks, 2 ranks: medians of Google Benchmark's manual times.
[[ " $parts " == *" mpi "* ]] || filters=""
# The console reporter (Google Benchmark's CSV reporter aborts when a later benchmark adds counters).
: > "$out/bench_real.txt"; : > "$out/bench_sim.txt"
if [ -n "${filters-all}" ]; then
  bench_args=(--benchmark_filter='GetLatency|ModelLayer' --benchmark_repetitions=3 --benchmark_report_aggregates_only=true
              --benchmark_color=false)
  "${mpirun_cmd[@]}" -np 2 build/release/sdnn_bench_mpi "${bench_args[@]}" > "$out/bench_real.txt" 2> "$out/bench_real.err" ||
    echo "sim_validate.sh: the real microbenchmarks failed (exit $?; $out/bench_real.err)"
  # Google Benchmark is a shared library: SMPI privatizes only the executable's globals, so without
  # privatize-libs the simulated ranks share one benchmark registry and run different lists.
  benchmark_lib=$(ldd build/sim/sdnn_bench_mpi | awk '/libbenchmark/ { print $1; exit }')
  $(smpirun_cmd 2) ${benchmark_lib:+--cfg=smpi/privatize-libs:$benchmark_lib} build/sim/sdnn_bench_mpi "${bench_args[@]}" \
    > "$out/bench_sim.txt" 2> "$out/bench_sim.err" ||
    echo "sim_validate.sh: the simulated microbenchmarks failed (exit $?; $out/bench_sim.err)"
fi
medians() { awk '$1 ~ /_median$/ { name = $1; sub(/\/(iterations|manual_time).*/, "", name); print name, $2, $3 }' "$1"; }
join <(medians "$out/bench_real.txt" | sort) <(medians "$out/bench_sim.txt" | sort) | sort -t/ -k1,1 -k2,2n |
  while read -r name real_t unit sim_t _; do
    add mpi "$name" "time per iteration ($unit)" "$real_t" "$sim_t"
  done

# A shared machine: real wall times include waiting for a core, SMPI's computation is CPU time.
# One rank has no communication, so its real/simulated ratio (per strategy) is that load factor;
# real_corrected divides the real times of the same strategy by it.
awk -F, -v OFS=, '{ print } $1 == "program" && $3 == "inference (s)" && $2 ~ / 1 rank/ {
    n = split($2, w, "; "); print "factor", w[n], $4 / $5 }' "$rows" |
  awk -F, -v OFS=, '$1 == "factor" { f[$2] = $3; next } { rows[NR] = $0 } END {
    print "kind,case,metric,real,simulated,error_pct,real_load_corrected,error_corrected_pct"
    for (i = 1; i <= NR; i++) if (i in rows) {
      split(rows[i], v, ","); n = split(v[2], w, "; "); c = ""; e = ""
      if (v[1] == "program" && v[3] == "inference (s)" && f[w[n]] > 0) {
        c = sprintf("%.4g", v[4] / f[w[n]]); e = sprintf("%+.0f", 100 * (v[5] - c) / c) }
      print rows[i], c, e } }' > "$out/sim_validate.csv"
{
  echo "| kind | case | metric | real | simulated | error | real, load-corrected | error, corrected |"
  echo "|---|---|---|---|---|---|---|---|"
  tail -n +2 "$out/sim_validate.csv" | awk -F, '{ printf "| %s | %s | %s | %.4g | %.4g | %s%% | %s | %s |\n",
    $1, $2, $3, $4, $5, $6, $7, ($8 == "" ? "" : $8 "%") }' 
  echo
  echo "Host speed ${host_speed} flop/s; load average after: $(cut -d' ' -f1-3 /proc/loadavg) (2 cores)."
} > "$out/sim_validate.md"
rm -f "$rows" "$out"/real_* "$out"/sim_t "$out"/sim_c
cat "$out/sim_validate.md"
