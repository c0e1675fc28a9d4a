#!/usr/bin/env bash
# reuse.sh: sdnn with and without --reuse (exact computation reuse, docs/reuse.md), side by side:
# the two runs of each repetition follow each other (in turn off-on and on-off), REPS repetitions, and the medians of the
# inference time and the multiply-adds done, with their ratios. Every run's categories and
# checksum must agree between the two (the script stops otherwise).
#
# Cases (arguments; default: official default fashion1024 fashion4096):
#   official     the 120 official 1024-neuron layers, the first 1200 official inputs, with the truth
#                ($SDNN_DATA or ../shared/data/graphchallenge; skipped with a message when absent)
#   default      the generated default problem (1024 neurons, 120 layers, 60,000 synthetic inputs)
#   fashion1024  the official 1024-neuron layers (generated ones when absent) with the first
#                $FASHION_INPUTS Fashion-MNIST images as inputs (sdnn generate --inputs IDX)
#   fashion4096  a generated 4096-neuron network, 120 layers, with the same images at N = 4096
# Environment: SDNN (default ./sdnn), REPS (default 3), THREADS (default 2), STRATEGY (format/parallel,
#   default csr/data), FASHION_IDX (default Debian's dataset-fashion-mnist train images),
#   FASHION_INPUTS (default 60000), EXTRA (more sdnn options), BENCH_DATA (where the generated
#   inputs and network go, default build/bench-data: outside the sources).
# Writes every run to bench/out/reuse-CASES-M.csv (case,reuse,rep,infer_s,multiply_adds,rows_computed,
#   rows_computed_share,categories,checksum,load1; CASES: the cases, by -; M: FASHION_INPUTS) and
#   the medians to bench/out/reuse-CASES-M.md.
# Usage: bash bench/reuse.sh [official] [default] [fashion1024] [fashion4096]
set -euo pipefail
cd "$(dirname "$0")/.."
REPS=${REPS:-3}
THREADS=${THREADS:-2}
STRATEGY=${STRATEGY:-csr/data}
DATA=${SDNN_DATA:-../shared/data/graphchallenge}
FASHION_IDX=${FASHION_IDX:-/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz}
FASHION_INPUTS=${FASHION_INPUTS:-60000}
SDNN=${SDNN:-./sdnn}
cases=("$@")
[ ${#cases[@]} -eq 0 ] && cases=(official default fashion1024 fashion4096)
[ "$SDNN" != ./sdnn ] || [ -x ./sdnn ] || make --no-print-directory sdnn >/dev/null
BENCH_DATA=${BENCH_DATA:-build/bench-data}
mkdir -p bench/out "$BENCH_DATA"
tag=$(IFS=-; echo "${cases[*]}")-$FASHION_INPUTS
csv=bench/out/reuse-$tag.csv
echo "case,reuse,rep,infer_s,multiply_adds,rows_computed,rows_computed_share,categories,checksum,load1" > "$csv"

# One problem per entry: name|sdnn options
problems=()
for c in "${cases[@]}"; do
  case $c in
    official)
      if [ -f "$DATA/neuron1024/n1024-l120.tsv" ]; then
        problems+=("official|--network $DATA/neuron1024 --neurons 1024 --layers 120 --input $DATA/sparse-images-1024-first1200.tsv --inputs 1200 --truth $DATA/neuron1024-l120-categories-first1200.tsv")
      else echo "reuse.sh: official: SKIPPED (no official data in $DATA)"; fi ;;
    default) problems+=("default|--no-verify") ;;
    fashion1024|fashion4096)
      n=${c#fashion}
      if [ ! -f "$FASHION_IDX" ]; then echo "reuse.sh: $c: SKIPPED (no $FASHION_IDX; apt-get install dataset-fashion-mnist)"; continue; fi
      dir=$BENCH_DATA/fashion-$n-first$FASHION_INPUTS
      [ -f "$dir/sparse-images-$n.tsv" ] ||
        "$SDNN" generate --neurons "$n" --layers 0 --out "$dir" --inputs "$FASHION_IDX" --count "$FASHION_INPUTS" >/dev/null
      net=$DATA/neuron1024
      if [ "$n" != 1024 ] || [ ! -f "$net/n1024-l120.tsv" ]; then
        net=$BENCH_DATA/network-$n-120-s42/neuron$n
        [ -f "$net/n$n-l120.tsv" ] || "$SDNN" generate --neurons "$n" --layers 120 --seed 42 --out "${net%/*}" >/dev/null
      fi
      problems+=("$c|--network $net --neurons $n --layers 120 --input $dir/sparse-images-$n.tsv --inputs $FASHION_INPUTS") ;;
    *) echo "reuse.sh: unknown case $c" >&2; exit 2 ;;
  esac
done

. bench/common.sh  # field
echo "reuse.sh: start: $(uptime)" >&2
for problem in "${problems[@]}"; do
  name=${problem%%|*}
  read -r -a options <<<"${problem#*|}"
  echo "reuse.sh: $name, $REPS repetitions, $THREADS threads, $STRATEGY" >&2
  for rep in $(seq 1 "$REPS"); do
    reference=""
    order="off on"; [ $((rep % 2)) = 0 ] && order="on off"  # the first of a pair may run in other conditions
    for reuse in $order; do
      flag=(); [ $reuse = on ] && flag=(--reuse)
      load=$(cut -d' ' -f1 /proc/loadavg)
      line=$("$SDNN" "${options[@]}" -q --threads "$THREADS" --format "${STRATEGY%/*}" --parallel "${STRATEGY#*/}" \
             ${EXTRA:-} "${flag[@]}" | grep '^summary ')
      result="$(field "$line" categories) $(field "$line" checksum)"
      [ -z "$reference" ] && reference=$result
      [ "$result" = "$reference" ] || { echo "reuse.sh: $name: with reuse '$result', without '$reference'" >&2; exit 1; }
      echo "$name,$reuse,$rep,$(field "$line" infer_s),$(field "$line" multiply_adds),$(field "$line" rows_computed),$(field "$line" rows_computed_share),$(field "$line" categories),$(field "$line" checksum),$load" >> "$csv"
    done
  done
done

echo "reuse.sh: end: $(uptime)" >&2
python3 - "$csv" <<'PY' | tee "${csv%.csv}.md"
import csv, statistics, sys
rows = list(csv.DictReader(open(sys.argv[1])))
cases = list(dict.fromkeys(r["case"] for r in rows))
print("| case | categories | infer_s without | infer_s with | time ratio | multiply-adds without | with | ratio | rows computed (share of inputs x layers) |")
print("|---|---|---|---|---|---|---|---|---|")
for c in cases:
    def med(reuse, key):
        return statistics.median(float(r[key]) for r in rows if r["case"] == c and r["reuse"] == reuse)
    t0, t1 = med("off", "infer_s"), med("on", "infer_s")
    m0, m1 = med("off", "multiply_adds"), med("on", "multiply_adds")
    cats = next(r["categories"] for r in rows if r["case"] == c)
    computed, share = int(med("on", "rows_computed")), med("on", "rows_computed_share")
    print(f"| {c} | {cats} | {t0:.3f} | {t1:.3f} | {t0 / t1:.2f}x | {m0:.3e} | {m1:.3e} | {m0 / m1:.1f}x | {computed} ({share:.4f}) |")
PY
