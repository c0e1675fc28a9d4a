#!/usr/bin/env bash
# host_speed.sh: the speed of one core of this machine, in the unit the platforms of bench/platforms
# give their cores: sdnn multiply-adds per second (the official 1200 inputs, 1024 neurons x 120
# layers, csr/data, one rank, one thread, the best of REPS runs: the run least disturbed by other
# work on a shared machine). Prints one number, e.g. 2.1e9, for --cfg=smpi/host-speed:<it>f.
# Under SMPI a rank's computation is timed on the machine that runs the simulation and turned into
# flops with smpi/host-speed, then run at the simulated core's speed; so a platform core whose speed
# is this figure runs as fast as this machine's core did when measured.
# Environment: SDNN (the real build, default build/release/sdnn), REPS (default 5),
#   DATA (default ../shared/data/graphchallenge).
set -euo pipefail
cd "$(dirname "$0")/../.."
sdnn=${SDNN:-build/release/sdnn} reps=${REPS:-5} data=${DATA:-../shared/data/graphchallenge}
[ -x "$sdnn" ] || { echo "host_speed.sh: $sdnn not built (make sdnn)" >&2; exit 1; }
[ -d "$data/neuron1024" ] || { echo "host_speed.sh: no official data in $data" >&2; exit 1; }
best=""
for _ in $(seq "$reps"); do
  line=$("$sdnn" --network "$data/neuron1024" --neurons 1024 --layers 120 --inputs 1200 \
    --input "$data/sparse-images-1024-first1200.tsv" --threads 1 --no-verify 2>&1)
  infer=$(sed -n 's/.* infer_s=\([0-9.e+-]*\).*/\1/p' <<< "$line")
  adds=$(sed -n 's/^multiply-adds: \([0-9.e+-]*\).*/\1/p' <<< "$line")
  rate=$(awk -v a="$adds" -v t="$infer" 'BEGIN { printf "%.4g", a / t }')
  best=$(awk -v a="$rate" -v b="${best:-0}" 'BEGIN { print (a > b ? a : b) }')
done
echo "$best"
