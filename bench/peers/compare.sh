#!/usr/bin/env bash
# compare.sh: sdnn against SuiteSparse:GraphBLAS (bench/peers/graphblas_dnn.c, the four-call layer)
# on the same files with the same thread count, alternating engines run by run, REPS times; prints
# the median inference time and rate of each, the ratio sdnn/GraphBLAS of the median rates and the
# 1 -> 2 thread speed-up, and checks that both engines find the same categories.
#
# Cases (arguments; default: official default fashion):
#   official  the 120 official 1024-neuron layers, the first 1200 official inputs, with the truth
#             ($SDNN_DATA or ../shared/data/graphchallenge; skipped with a message when absent)
#   default   the default problem (1024 neurons, 120 layers, 60,000 synthetic inputs, seed 42),
#             written as official TSV by `sdnn generate` when it works, else by
#             build/peers/write_problem (the same generator, linked from sdnn's library)
#   fashion   1024 and 4096 neurons x 120 layers with Fashion-MNIST-derived inputs (the first
#             $FASHION_INPUTS images, default 6000) from `sdnn generate --inputs IDX --count M`; the
#             official layers for N = 1024 when present, generated ones otherwise; pending (a
#             message) where sdnn generate is not available
# Environment: SDNN (the binary, default ./sdnn), REPS (default 5), THREADS (default "1 2"),
#   STRATEGIES (sdnn's format/parallel pairs, default "csr/data"; e.g. "csr/data csc/data csc/model"),
#   SIMD (sdnn's SIMD targets to run each strategy on, side by side, e.g. "AVX3 AVX2" through
#   SDNN_SIMD; default: the best one of the CPU),
#   FASHION_IDX (default Debian's dataset-fashion-mnist train-images-idx3-ubyte.gz), FASHION_INPUTS
#   (default 6000), FASHION_NEURONS (default "1024 4096"), TABLE_ONLY=1 (no runs: the table again from the CSV of the same cases),
#   QUIET_WAIT (seconds to wait before each run for the other tasks of a shared machine to finish,
#   default 0).
# Writes every run to bench/out/compare-CASES.csv (case,engine,strategy,threads,rep,read_s,infer_s,
#   rate,categories,challenge,load1,busy_others: the load average and the tasks running besides this
#   script just before the run, as the machine may be shared) and the medians to bench/out/compare-CASES.md (CASES: the cases, by -).
# Usage: bash bench/peers/compare.sh [official] [default] [fashion]
set -euo pipefail
cd "$(dirname "$0")/../.."
REPS=${REPS:-5}
THREADS=${THREADS:-"1 2"}
STRATEGIES=${STRATEGIES:-"csr/data"}
DATA=${SDNN_DATA:-../shared/data/graphchallenge}
FASHION_IDX=${FASHION_IDX:-/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz}
FASHION_INPUTS=${FASHION_INPUTS:-6000}
cases=("$@")
[ ${#cases[@]} -eq 0 ] && cases=(official default fashion)

[ -x build/peers/graphblas_dnn ] && [ -x build/peers/write_problem ] || bash bench/peers/build.sh
SDNN=${SDNN:-./sdnn}
[ "$SDNN" != ./sdnn ] || [ -x ./sdnn ] || make --no-print-directory sdnn >/dev/null
mkdir -p bench/out/data
tag=$(IFS=-; echo "${cases[*]}")
csv=bench/out/compare-$tag.csv
[ "${TABLE_ONLY:-0}" = 1 ] || echo "case,engine,strategy,threads,rep,read_s,infer_s,rate,categories,challenge,load1,busy_others" > "$csv"

# One problem per entry: name|network dir|neurons|layers|input file|inputs|truth file (or empty).
problems=()

# `sdnn generate` into DIR (args after DIR); true when it wrote the layout of issue 3.
sdnn_generate() {
  local dir=$1 n=$2; shift 2
  "$SDNN" generate --neurons "$n" --out "$dir" "$@" >/dev/null 2>&1 &&
    [ -f "$dir/neuron$n/n$n-l1.tsv" ] && [ -f "$dir/sparse-images-$n.tsv" ]
}

for c in "${cases[@]}"; do
  case $c in
    official)
      if [ -f "$DATA/neuron1024/n1024-l120.tsv" ] && [ -f "$DATA/sparse-images-1024-first1200.tsv" ]; then
        problems+=("official|$DATA/neuron1024|1024|120|$DATA/sparse-images-1024-first1200.tsv|1200|$DATA/neuron1024-l120-categories-first1200.tsv")
      else
        echo "compare.sh: official: SKIPPED (no official data in $DATA)"
      fi ;;
    default)
      dir=bench/out/data/default-1024-120-s42
      if [ ! -f "$dir/sparse-images-1024.tsv" ]; then
        if sdnn_generate "$dir" 1024 --layers 120 --seed 42 --inputs synthetic; then
          echo "compare.sh: default: files written by sdnn generate"
        else
          build/peers/write_problem --neurons 1024 --layers 120 --seed 42 --inputs 60000 --out "$dir"
          echo "compare.sh: default: files written by build/peers/write_problem (sdnn generate not available)"
        fi
      fi
      problems+=("default|$dir/neuron1024|1024|120|$dir/sparse-images-1024.tsv|60000|") ;;
    fashion)
      if [ ! -f "$FASHION_IDX" ]; then
        echo "compare.sh: fashion: PENDING (no idx file $FASHION_IDX; apt-get install dataset-fashion-mnist)"
        continue
      fi
      for n in ${FASHION_NEURONS:-1024 4096}; do
        dir=bench/out/data/fashion-$n-120-first$FASHION_INPUTS
        if [ ! -f "$dir/sparse-images-$n.tsv" ]; then
          if ! sdnn_generate "$dir" "$n" --layers 120 --seed 42 --inputs "$FASHION_IDX" --count "$FASHION_INPUTS"; then
            echo "compare.sh: fashion N=$n: PENDING (sdnn generate --inputs IDX is not available)"
            continue
          fi
        fi
        net=$dir/neuron$n
        [ "$n" = 1024 ] && [ -f "$DATA/neuron1024/n1024-l120.tsv" ] && net=$DATA/neuron1024
        problems+=("fashion$n|$net|$n|120|$dir/sparse-images-$n.tsv|$FASHION_INPUTS|")
      done ;;
    *) echo "compare.sh: unknown case $c (official, default, fashion)" >&2; exit 2 ;;
  esac
done

field() { tr ' ' '\n' <<<"$1" | sed -n "s/^$2=//p"; }
# QUIET_WAIT=S: before each run, wait up to S seconds (checking every 0.5 s) until no other task runs.
others_running() { local running; read -r _ _ _ running _ < /proc/loadavg; echo $(( ${running%/*} - 1 )); }
wait_quiet() {
  local tries=$(( ${QUIET_WAIT:-0} * 2 ))
  while (( tries > 0 )) && (( $(others_running) > 0 )); do sleep 0.5; tries=$(( tries - 1 )); done
}
# The machine may be shared: its load average and the tasks running besides this script, now.
machine_load() { local load running; read -r load _ _ running _ < /proc/loadavg; echo "$load,$(( ${running%/*} - 1 ))"; }

[ "${TABLE_ONLY:-0}" = 1 ] && problems=()
for problem in "${problems[@]}"; do
  IFS='|' read -r name net n layers input m truth <<<"$problem"
  common=(--network "$net" --neurons "$n" --layers "$layers" --input "$input" --inputs "$m")
  [ -n "$truth" ] && common+=(--truth "$truth")
  echo "compare.sh: $name: N=$n L=$layers inputs=$m, $REPS repetitions, threads $THREADS" >&2
  for rep in $(seq 1 "$REPS"); do
    for t in $THREADS; do
      wait_quiet
      load=$(machine_load)
      line=$(OMP_NUM_THREADS=$t build/peers/graphblas_dnn "${common[@]}" --threads "$t" | grep '^summary ') || true
      [ -n "$line" ] || { echo "compare.sh: graphblas_dnn failed on $name" >&2; exit 1; }
      echo "$name,graphblas,four-call,$t,$rep,$(field "$line" read_s),$(field "$line" infer_s),$(field "$line" rate),$(field "$line" categories),$(field "$line" challenge),$load" >> "$csv"
      for s in $STRATEGIES; do
        for simd in ${SIMD:-best}; do
          wait_quiet
          load=$(machine_load)
          label=$s; [ "$simd" = best ] || label="$s $simd"
          line=$( ([ "$simd" = best ] || export SDNN_SIMD=$simd
                   "$SDNN" "${common[@]}" --threads "$t" -q --format "${s%/*}" --parallel "${s#*/}") | grep '^summary ') || true
          [ -n "$line" ] || { echo "compare.sh: sdnn failed on $name ($label)" >&2; exit 1; }
          echo "$name,sdnn,$label,$t,$rep,$(field "$line" read_s),$(field "$line" infer_s),$(field "$line" rate),$(field "$line" categories),$(field "$line" challenge),$load" >> "$csv"
        done
      done
    done
  done
done

python3 - "$csv" <<'PY' | tee "${csv%.csv}.md"
import csv, statistics, sys
rows = list(csv.DictReader(open(sys.argv[1])))
if not rows:
    sys.exit(0)
med = {}
cats = {}
for r in rows:
    key = (r["case"], r["engine"], r["strategy"], int(r["threads"]))
    med.setdefault(key, []).append((float(r["infer_s"]), float(r["rate"])))
    cats.setdefault(r["case"], set()).add(r["categories"])
# Medians, and the best run (the least disturbed on a shared machine) beside them.
print("| case | engine | strategy | threads | median inference (s) | median rate (edges/s) | sdnn / GraphBLAS | speed-up 1 -> 2 threads | best rate (edges/s) | sdnn / GraphBLAS, best | speed-up, best |")
print("|---|---|---|---|---|---|---|---|---|---|---|")
median_rate = lambda key: statistics.median(x[1] for x in med[key])
best_rate = lambda key: max(x[1] for x in med[key])
for key in sorted(med, key=lambda k: (k[0], k[1] != "graphblas", k[2], k[3])):
    case, engine, strategy, threads = key
    t = statistics.median(x[0] for x in med[key])
    peer = [k for k in med if k[0] == case and k[1] == "graphblas" and k[3] == threads]
    one = (case, engine, strategy, 1)
    cells = []
    for rate_of in (median_rate, best_rate):
        rate = rate_of(key)
        ratio = "" if engine == "graphblas" or not peer else "%.2fx" % (rate / rate_of(peer[0]))
        speedup = "%.2fx" % (rate / rate_of(one)) if threads != 1 and one in med else ""
        cells.append((rate, ratio, speedup))
    (rate, ratio, speedup), (best, best_ratio, best_speedup) = cells
    print(f"| {case} | {engine} | {strategy} | {threads} | {t:.4f} | {rate:.3e} | {ratio} | {speedup} | {best:.3e} | {best_ratio} | {best_speedup} |")
loads = [float(r["load1"]) for r in rows]
busy = [int(r["busy_others"]) for r in rows]
print(f"\nBefore the runs: load average (1 min) median {statistics.median(loads):.2f}, max {max(loads):.2f}; "
      f"other tasks running: median {statistics.median(busy):g}, max {max(busy)}")
for case, c in cats.items():
    if len(c) != 1:
        print(f"\nWARNING: {case}: the engines disagree on the number of categories: {sorted(c)}")
PY
echo "compare.sh: every run in $csv, medians in ${csv%.csv}.md" >&2
