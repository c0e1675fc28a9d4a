#!/usr/bin/env bash
# host_speed.sh: the speed of one core of this machine, in the unit the platforms of bench/platforms
# give their cores: sdnn multiply-adds per second of CPU time (the official 1200 inputs, 1024
# neurons x 120 layers, csr/data, one rank, one thread; the best of REPS runs). Prints one number,
# e.g. 1.2e9, for --cfg=smpi/host-speed:<it>f.
# Why CPU time: SMPI times a rank's computation in CPU time of its thread (CLOCK_THREAD_CPUTIME_ID)
# and turns it into flops with smpi/host-speed, then runs them at the simulated core's speed. A wall
# clock figure would fall with the load of a shared machine (4.4x lower at a load of 20 on 2 cores)
# while SMPI's CPU times do not. So the figure is taken by SMPI itself: one simulated rank on a
# 1 Gf core with smpi/host-speed 1 Gf, where the simulated inference time is the CPU time.
# A platform core whose speed is this figure runs as fast as this machine's core did when measured.
# Environment: SIM (the SMPI build, default build/sim/sdnn: make sim), REPS (default 5),
#   DATA (default ../shared/data/graphchallenge).
set -euo pipefail
cd "$(dirname "$0")/../.."
sim=${SIM:-build/sim/sdnn} reps=${REPS:-5} data=${DATA:-../shared/data/graphchallenge}
[ -x "$sim" ] || { echo "host_speed.sh: $sim not built (make sim)" >&2; exit 1; }
[ -d "$data/neuron1024" ] || { echo "host_speed.sh: no official data in $data" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cat > "$tmp/core.xml" <<'XML'
<?xml version='1.0'?>
<!DOCTYPE platform SYSTEM "https://simgrid.org/simgrid.dtd">
<platform version="4.1"><cluster id="core" prefix="node-" suffix="" radical="0-0" speed="1Gf" bw="1GBps" lat="0"/></platform>
XML
echo "node-0:1" > "$tmp/hosts"
best=0
for _ in $(seq "$reps"); do
  smpirun -np 1 -platform "$tmp/core.xml" -hostfile "$tmp/hosts" --cfg=smpi/host-speed:1Gf --log=root.thresh:warning \
    "$sim" --network "$data/neuron1024" --neurons 1024 --layers 120 --inputs 1200 \
    --input "$data/sparse-images-1024-first1200.tsv" --threads 1 --no-verify > "$tmp/out" 2>&1 ||
    { echo "host_speed.sh: the calibration run failed:" >&2; tail -5 "$tmp/out" >&2; exit 1; }
  infer=$(sed -n 's/.* infer_s=\([0-9.e+-]*\).*/\1/p' "$tmp/out")
  adds=$(sed -n 's/^multiply-adds: \([0-9.e+-]*\).*/\1/p' "$tmp/out")
  best=$(awk -v a="$adds" -v t="$infer" -v b="$best" 'BEGIN { r = a / t; print (r > b ? r : b) }')
done
awk -v b="$best" 'BEGIN { printf "%.4g\n", b }'
