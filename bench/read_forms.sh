#!/usr/bin/env bash
# read_forms.sh: how fast sdnn reads one problem in each form it accepts (docs/data.md, 'Reading
# each form'): the official TSV files, the same gzipped (a .gz input, a folder of .tsv.gz layers),
# the network as neuronN.tar.gz (the official download) with a .gz input, and sdnn's archives
# (sdnn convert). The problem is written once by `sdnn generate` (N neurons, L layers, COUNT
# synthetic inputs, seed 42) under DATA, compressed with gzip -6 (gzip's default, as the
# official files), then each form is loaded alone (`--load-only`) REPS times, the forms
# alternating, with RANKS ranks of THREADS threads. Prints a Markdown table of the medians
# (seconds, the rate of TSV text per second: the plain files' bytes over the seconds, and the
# ratio to plain) and writes every run to bench/out/read-forms-N.csv.
# Usage: [SDNN=./sdnn] [N=4096] [L=120] [COUNT=60000] [REPS=3] [RANKS=1] [THREADS=2]
#        [DATA=bench/out/read-forms] bash bench/read_forms.sh
set -euo pipefail
cd "$(dirname "$0")/.."
SDNN=${SDNN:-./sdnn}
N=${N:-4096} L=${L:-120} COUNT=${COUNT:-60000} REPS=${REPS:-3} RANKS=${RANKS:-1} THREADS=${THREADS:-2}
DATA=${DATA:-bench/out/read-forms}
MPIRUN=${MPIRUN:-mpirun --oversubscribe $([ "$(id -u)" = 0 ] && echo --allow-run-as-root)}
dir=$DATA/n$N-l$L-$COUNT
mkdir -p "$dir" bench/out
if [ ! -f "$dir/sparse-images-$N.tsv" ]; then
  "$SDNN" generate --neurons "$N" --layers "$L" --out "$dir" --inputs synthetic --count "$COUNT" > /dev/null
fi
if [ ! -f "$dir/sparse-images-$N.tsv.gz" ]; then
  gzip -6 -k "$dir/sparse-images-$N.tsv"
  mkdir -p "$dir/gzipped"
  for f in "$dir/neuron$N"/*.tsv; do gzip -6 -c "$f" > "$dir/gzipped/$(basename "$f").gz"; done
  tar cf - -C "$dir" "neuron$N" | gzip -6 > "$dir/neuron$N.tar.gz"
fi
if [ ! -f "$dir/archives/neuron$N-l$L.sdnn" ]; then
  "$SDNN" convert --neurons "$N" --layers "$L" --network "$dir/neuron$N" --input "$dir/sparse-images-$N.tsv" \
    --inputs "$COUNT" --out "$dir/archives" > /dev/null
fi
size_of() { du -cb "$@" | tail -1 | cut -f1; }
plain_bytes=$(size_of "$dir/neuron$N" "$dir/sparse-images-$N.tsv")
declare -A network input bytes
network[plain]=$dir/neuron$N;                    input[plain]=$dir/sparse-images-$N.tsv
network[gz]=$dir/gzipped;                        input[gz]=$dir/sparse-images-$N.tsv.gz
network[tar.gz]=$dir/neuron$N.tar.gz;            input[tar.gz]=$dir/sparse-images-$N.tsv.gz
network[archive]=$dir/archives/neuron$N-l$L.sdnn; input[archive]=$dir/archives/sparse-images-$N-$COUNT.sdnn
forms="plain gz tar.gz archive"
for form in $forms; do bytes[$form]=$(size_of "${network[$form]}" "${input[$form]}"); done
csv=bench/out/read-forms-$N.csv
echo "form,rep,ranks,threads,read_s,network_s,input_s,disk_bytes,peak_rss_mb,load1" > "$csv"
for rep in $(seq 1 "$REPS"); do
  for form in $forms; do
    out=$($MPIRUN -np "$RANKS" "$SDNN" --network "${network[$form]}" --input "${input[$form]}" --neurons "$N" \
          --layers "$L" --inputs "$COUNT" --threads "$THREADS" --load-only)
    read_line=$(grep '^read:' <<< "$out")
    network_s=$(sed -nE 's/.*\(network ([0-9.]+) s.*/\1/p' <<< "$read_line")
    input_s=$(sed -nE 's/.*input ([0-9.]+) s\).*/\1/p' <<< "$read_line")
    summary=$(grep '^summary ' <<< "$out" | tr ' ' '\n')
    read_s=$(sed -n 's/^read_s=//p' <<< "$summary")
    rss=$(sed -n 's/^peak_rss_mb=//p' <<< "$summary")
    echo "$form,$rep,$RANKS,$THREADS,$read_s,$network_s,$input_s,${bytes[$form]},$rss,$(cut -d' ' -f1 /proc/loadavg)" >> "$csv"
  done
done
median() { sort -g | awk '{v[NR]=$1} END {print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}'; }
echo "N=$N, $L layers, $COUNT inputs; $RANKS rank(s) x $THREADS thread(s); median of $REPS; plain TSV text $(awk -v b="$plain_bytes" 'BEGIN{printf "%.0f", b/1e6}') MB"
echo
echo "| form | on disk (MB) | read (s) | network (s) | input (s) | TSV text read (MB/s) | time / plain |"
echo "|---|---:|---:|---:|---:|---:|---:|"
plain_s=$(awk -F, '$1 == "plain" {print $5}' "$csv" | median)
for form in $forms; do
  s=$(awk -F, -v f="$form" '$1 == f {print $5}' "$csv" | median)
  ns=$(awk -F, -v f="$form" '$1 == f {print $6}' "$csv" | median)
  is=$(awk -F, -v f="$form" '$1 == f {print $7}' "$csv" | median)
  awk -v f="$form" -v d="${bytes[$form]}" -v s="$s" -v ns="$ns" -v is="$is" -v p="$plain_bytes" -v ps="$plain_s" \
    'BEGIN {printf "| %s | %.0f | %.2f | %.2f | %.2f | %.0f | %.2f |\n", f, d / 1e6, s, ns, is, p / 1e6 / s, s / ps}'
done
