#!/usr/bin/env bash
# sizes.sh: the table of problem sizes in docs/data.md. For each N (default 1024 4096 16384 65536), L
# layers (default 120) and COUNT inputs (default 60000) it
#   1. writes the problem as official TSV files with `sdnn generate` (a RadiX-Net network, seed
#      42, and inputs from INPUTS: `synthetic`, the default problem's generator, or an
#      MNIST-format idx file such as Debian's dataset-fashion-mnist), once, under DATA;
#   2. converts them to binary archives with `sdnn convert`, once;
#   3. times loading alone (`--load-only`) from the TSV files and from the archives, REPS times
#      each, alternating;
#   4. runs the inference once from the archives (the inference does not depend on the source).
# Every run is one process with THREADS threads (default 2). Writes bench/out/sizes-TAG.csv (one
# row per run: N, L, inputs, source, what, read_s, read_mb_s, infer_s, rate, categories,
# peak_rss_mb, network_mb, input_mb, file sizes, load1, busy_others) and prints a Markdown table
# of the medians. KEEP=0 deletes each size's files after it is measured (the 65536-neuron TSV
# files are about 15 GB). APPEND=1 adds to the CSV of the same TAG instead of starting it anew.
# NAME names the inputs in the folder and file names (default: synthetic, or the idx file name up to its first - or .).
# Usage: [SDNN=./sdnn] [INPUTS=synthetic|IDX] [NAME=name] [COUNT=60000] [REPS=3] [THREADS=2] [LAYERS=120]
#        [DATA=bench/out/data] [TAG=name] [KEEP=1] bash bench/sizes.sh [N ...]
set -euo pipefail
cd "$(dirname "$0")/.."
SDNN=${SDNN:-./sdnn}
INPUTS=${INPUTS:-synthetic}
COUNT=${COUNT:-60000}
REPS=${REPS:-3}
THREADS=${THREADS:-2}
LAYERS=${LAYERS:-120}
DATA=${DATA:-bench/out/data}
KEEP=${KEEP:-1}
source_name=${NAME:-$([ "$INPUTS" = synthetic ] && echo synthetic || basename "$INPUTS" | sed "s/[-.].*//")}
TAG=${TAG:-$source_name-$COUNT}
sizes=("$@")
[ ${#sizes[@]} -eq 0 ] && sizes=(1024 4096 16384 65536)
mkdir -p bench/out
csv=bench/out/sizes-$TAG.csv
md=bench/out/sizes-$TAG.md

others_running() { local running; read -r _ _ _ running _ < /proc/loadavg; echo $(( ${running%/*} - 1 )); }
get() { tr ' ' '\n' <<< "$1" | sed -n "s/^$2=//p"; }
# run WHAT SOURCE ARGS...: one sdnn run, one CSV row.
run() {
  local what=$1 source=$2; shift 2
  local load1 busy out line
  read -r load1 _ < /proc/loadavg
  busy=$(others_running)
  if ! out=$("$SDNN" -q --threads "$THREADS" "$@" 2>&1); then
    echo "sizes.sh: N=$n $what from $source failed:" >&2; echo "$out" >&2; exit 1
  fi
  line=$(grep '^summary ' <<< "$out")
  echo "$n,$LAYERS,$COUNT,$INPUTS,$source,$what,$(get "$line" read_s),$(get "$line" read_mb_s),$(get "$line" infer_s),$(get "$line" rate),$(get "$line" categories),$(get "$line" peak_rss_mb),$(get "$line" network_mb),$(get "$line" input_mb),$tsv_mb,$archive_mb,$load1,$busy" >> "$csv"
  echo "  N=$n $what from $source: $(grep -E '^(read|inference|memory|categories)' <<< "$out" | tr '\n' ';')"
}

[ "${APPEND:-0}" = 1 ] && [ -f "$csv" ] ||
  echo "N,L,inputs,input_source,source,what,read_s,read_mb_s,infer_s,rate,categories,peak_rss_mb,network_mb,input_mb,tsv_mb,archive_mb,load1,busy_others" > "$csv"
for n in "${sizes[@]}"; do
  dir=$DATA/sizes-$source_name-$n-$LAYERS-$COUNT
  net=$dir/neuron$n; input=$dir/sparse-images-$n.tsv
  net_archive=$dir/archive/neuron$n-l$LAYERS.sdnn; input_archive=$dir/archive/sparse-images-$n-$COUNT.sdnn
  if [ ! -f "$input" ] || [ ! -f "$net/n$n-l$LAYERS.tsv" ]; then
    echo "sizes.sh: N=$n: generating $dir"
    rm -rf "$dir"
    generate_inputs=(--inputs "$INPUTS" --count "$COUNT")
    "$SDNN" generate --neurons "$n" --layers "$LAYERS" --seed 42 --out "$dir" "${generate_inputs[@]}" --threads "$THREADS"
  fi
  if [ ! -f "$net_archive" ] || [ ! -f "$input_archive" ]; then
    echo "sizes.sh: N=$n: converting to archives"
    "$SDNN" convert --neurons "$n" --network "$net" --layers "$LAYERS" --input "$input" --inputs "$COUNT" \
      --out "$dir/archive" --threads "$THREADS"
  fi
  tsv_mb=$(du -sm --apparent-size "$net" "$input" | awk '{s += $1} END {print s}')
  archive_mb=$(du -sm --apparent-size "$dir/archive" | awk '{print $1}')
  for rep in $(seq 1 "$REPS"); do
    run load tsv --load-only --network "$net" --neurons "$n" --layers "$LAYERS" --input "$input" --inputs "$COUNT"
    run load archive --load-only --network "$net_archive" --neurons "$n" --layers "$LAYERS" --input "$input_archive" --inputs "$COUNT"
  done
  run infer archive --network "$net_archive" --neurons "$n" --layers "$LAYERS" --input "$input_archive" --inputs "$COUNT"
  [ "$KEEP" = 0 ] && rm -rf "$dir"
done

python3 - "$csv" "$THREADS" > "$md" <<'PY'
import csv, statistics, sys
rows = list(csv.DictReader(open(sys.argv[1])))
med = lambda xs: statistics.median(xs) if xs else float("nan")
print("| neurons | layers | inputs | TSV MB | TSV read (s) | TSV MB/s (per core) | archive MB | archive read (s) | TSV / archive | inference (s) | rate (edges/s) | categories | peak memory (MB) | network MB | input MB |")
print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
threads = int(sys.argv[2])
for n in dict.fromkeys(r["N"] for r in rows):
    mine = [r for r in rows if r["N"] == n]
    tsv = [r for r in mine if r["what"] == "load" and r["source"] == "tsv"]
    arc = [r for r in mine if r["what"] == "load" and r["source"] == "archive"]
    inf = [r for r in mine if r["what"] == "infer"][-1]
    t_tsv, t_arc = med([float(r["read_s"]) for r in tsv]), med([float(r["read_s"]) for r in arc])
    mbs = med([float(r["read_mb_s"]) for r in tsv])
    peak = max(float(r["peak_rss_mb"]) for r in mine)
    print(f"| {n} | {inf['L']} | {inf['inputs']} | {inf['tsv_mb']} | {t_tsv:.2f} | {mbs:.0f} ({mbs / threads:.0f}) | {inf['archive_mb']} | "
          f"{t_arc:.2f} | {t_tsv / t_arc:.1f}x | {float(inf['infer_s']):.2f} | {float(inf['rate']):.3e} | {inf['categories']} | "
          f"{peak:.0f} | {float(inf['network_mb']):.0f} | {float(inf['input_mb']):.0f} |")
runs = [(float(r["load1"]), int(r["busy_others"])) for r in rows]
print()
print(f"Before the runs: load average (1 min) median {med([l for l, _ in runs]):.2f}, max {max(l for l, _ in runs):.2f}; "
      f"other tasks running: median {med([b for _, b in runs]):g}, max {max(b for _, b in runs)}")
PY
cat "$md"
