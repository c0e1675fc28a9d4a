#!/usr/bin/env bash
# model_sync_sim.sh: data x model's communication per layer, this build against an older one,
# side by side in the same simulation (SimGrid's SMPI, bench/platforms/omnipath_32x28.xml, ranks
# packed 28 to a node, 1 thread per rank), on the official 1200 inputs (1024 neurons x 120 layers).
# Each run alternates the two binaries; the report's per-rank communication time (sdnn --report)
# gives the communication per layer: its mean and its largest over ranks, divided by the layers.
#
# What each change gains on its own: VARIANTS runs this build again with one change undone per
# variant (SDNN_MODEL_COMM, src/main/strategy_model.hpp): world-sync (a barrier over every rank each
# layer, as when the per-layer collective covered every rank instead of the row group),
# per-range-gets (one get per range instead of one per peer: column offsets of sparse rows, panels
# of dense rows), panel-blocks (dense rows: a peer's whole block fetched as one block per stored panel,
# merged by Window::get_blocks, instead of one plain get), whole-gets (dense rows: one get per peer
# for the layer, instead of parts of the stored panels computed as they arrive), window-gets (every
# peer's bytes through the window's gets, as before the node segments), block-columns (contiguous
# column blocks instead of cyclic ones), super-rows=N (super-blocks of N rows; 0: the whole row
# group at once), no-overlap
# (sdnn --no-overlap: every get completes before the layer computes). Each variant's row, and its
# communication over this build's, is what that change gains.
#
# Waiting against moving data: with SPLIT=yes every run is made twice, the second time with
# SMPI's computation not simulated (--cfg=smpi/simulate-computation:no: every rank's computation
# takes no simulated time, so no rank waits for a slower one); its communication is the network's
# part (transfers and collectives alone), and the difference the wait for the slowest rank of the
# group (the computation runs for real and its CPU time, noise included, is what SMPI simulates).
# COMPUTE=no makes every run that way (the network's part alone; deterministic, so made once).
# ROUNDS=n repeats the runs n times, the builds interleaved; the tables give medians over the rounds.
#
# Usage: OLD=path/to/old/build/sim/sdnn bench/model_sync_sim.sh
#        VARIANTS="world-sync per-range-gets panel-blocks no-overlap" GRIDS="4x4 1x16" bench/model_sync_sim.sh
#        (without OLD: this build and its variants only)
# Environment: ROUNDS (default 1), SPLIT (yes: also the network's part), COMPUTE (no: only the
#   network's part), OLD (the older SMPI build, e.g. a worktree of that commit built with make sim;
#   required unless VARIANTS is set), VARIANTS (default none), NEW (default build/sim/sdnn), GRIDS (default "2x2 1x4 4x4 2x8 1x16 8x8 4x16 1x64"),
#   HOST_SPEED (flop/s of one core; default bench/platforms/host_speed.sh), OUT (default
#   bench/out/model-sync), DATA (default ../shared/data/graphchallenge).
# Writes $OUT/model_sync.csv: build,grid,ranks,round,compute,infer_s,comm_ratio,comm_per_layer_mean_ms,
#   comm_per_layer_max_ms,bytes,messages,challenge (compute: yes, or no for the network's part), and
#   prints a table with the ratios old / new and one with each variant over this build.
set -euo pipefail
cd "$(dirname "$0")/.."
variants=${VARIANTS:-}
old=${OLD:-}
[ -n "$old" ] || [ -n "$variants" ] || { echo "model_sync_sim.sh: set OLD (the older SMPI build of sdnn) or VARIANTS" >&2; exit 1; }
for v in $variants; do
  case $v in world-sync|per-range-gets|panel-blocks|whole-gets|window-gets|block-columns|super-rows=*|no-overlap) ;; *) echo "model_sync_sim.sh: unknown variant $v" >&2; exit 1 ;; esac
done
new=${NEW:-build/sim/sdnn}
grids=${GRIDS:-"2x2 1x4 4x4 2x8 1x16 8x8 4x16 1x64"}
rounds=${ROUNDS:-1}
case ${SPLIT:-no},${COMPUTE:-yes} in
  yes,yes) computes="yes no" ;;
  *,no) computes="no" ;;
  *) computes="yes" ;;
esac
out=${OUT:-bench/out/model-sync}
data=${DATA:-../shared/data/graphchallenge}
platform=bench/platforms/omnipath_32x28.xml
command -v smpirun > /dev/null || { echo "model_sync_sim.sh: smpirun not installed (make sim-deps)" >&2; exit 1; }
mkdir -p "$out/data"
[ -x ./sdnn ] || make --no-print-directory sdnn > /dev/null
[ -x "$new" ] || make --no-print-directory sim-build > /dev/null
if [ ! -f "$out/data/neuron1024-l120.sdnn" ]; then
  ./sdnn convert --neurons 1024 --network "$data/neuron1024" --layers 120 \
    --input "$data/sparse-images-1024-first1200.tsv" --inputs 1200 --out "$out/data" > /dev/null
fi
host_speed=${HOST_SPEED:-$(bench/platforms/host_speed.sh)}
for n in $(seq 0 31); do echo "node-$n:28"; done > "$out/hostfile"
csv=$out/model_sync.csv
echo "build,grid,ranks,round,compute,infer_s,comm_ratio,comm_per_layer_mean_ms,comm_per_layer_max_ms,bytes,messages,challenge" > "$csv"
echo "uptime: $(uptime)"
for grid in $grids; do
  p=$(( ${grid%x*} * ${grid#*x} ))
  builds="new $variants"
  [ -n "$old" ] && builds="old $builds"
  for round in $(seq 1 "$rounds"); do
  for compute in $computes; do
  for build in $builds; do
    binary=$new switches="" flags="" binary_flags=""
    [ "$compute" = yes ] || flags="--cfg=smpi/simulate-computation:no"
    [ "$compute" = yes ] || [ "$round" = 1 ] || continue  # without computation the simulation is deterministic
    case $build in
      old) binary=$old ;;
      no-overlap) binary_flags=--no-overlap ;;
      world-sync|per-range-gets|panel-blocks|whole-gets|window-gets|block-columns|super-rows=*) switches=$build ;;
    esac
    SDNN_MODEL_COMM=$switches smpirun -np "$p" -platform "$platform" -hostfile "$out/hostfile" --cfg=smpi/host-speed:"${host_speed}f" $flags \
      --log=root.thresh:warning "$binary" --network "$out/data/neuron1024-l120.sdnn" \
      --input "$out/data/sparse-images-1024-1200.sdnn" --neurons 1024 --layers 120 --inputs 1200 \
      --truth "$data/neuron1024-l120-categories-first1200.tsv" --strategy model --grid "$grid" --threads 1 \
      --no-verify -q $binary_flags --report "$out/report.json" > "$out/log" 2>&1 || { echo "FAILED: $build $grid round $round compute $compute"; tail -5 "$out/log"; continue; }
    summary=$(grep '^summary' "$out/log")
    value() { sed -n "s/.* $1=\([^ ]*\).*/\1/p" <<< "$summary"; }
    per_layer=$(python3 -c '
import json, sys
r = json.load(open(sys.argv[1]))
comm = [k["comm_s"] for k in r["ranks"]]
layers = r["run"]["layers"]
print("%.4f,%.4f,%d,%d" % (1e3 * sum(comm) / len(comm) / layers, 1e3 * max(comm) / layers,
      sum(k["bytes_pulled"] for k in r["ranks"]), sum(k["messages"] for k in r["ranks"])))' "$out/report.json")
    echo "$build,$grid,$p,$round,$compute,$(value infer_s),$(value comm_ratio),$per_layer,$(value challenge)" >> "$csv"
  done
  done
  done
done
python3 - "$csv" <<'EOF'
import csv, statistics, sys
rows = list(csv.DictReader(open(sys.argv[1])))
def median(build, grid, compute, field):
    values = [float(r[field]) for r in rows if (r["build"], r["grid"], r["compute"]) == (build, grid, compute)]
    return statistics.median(values) if values else None
grids = list(dict.fromkeys(r["grid"] for r in rows))
ranks = {r["grid"]: r["ranks"] for r in rows}
computes = list(dict.fromkeys(r["compute"] for r in rows))
builds = list(dict.fromkeys(r["build"] for r in rows))
label = {"yes": "Communication", "no": "The network's part (computation not simulated)"}
for compute in computes:
    print()
    print("%s per layer (ms), medians over %s round(s)" % (label[compute], max(int(r["round"]) for r in rows)))
    if "old" in builds:
        print("| grid | ranks | old (mean / max) | new (mean / max) | old / new (mean) | inference old / new (s) |")
        print("|---|---|---|---|---|---|")
        for grid in grids:
            om, nm = median("old", grid, compute, "comm_per_layer_mean_ms"), median("new", grid, compute, "comm_per_layer_mean_ms")
            if om is None or nm is None: continue
            print("| %s | %s | %.4f / %.4f | %.4f / %.4f | %.1fx | %.3f / %.3f |" % (grid, ranks[grid], om,
                  median("old", grid, compute, "comm_per_layer_max_ms"), nm, median("new", grid, compute, "comm_per_layer_max_ms"),
                  om / nm if nm > 0 else float("inf"), median("old", grid, compute, "infer_s"), median("new", grid, compute, "infer_s")))
    variants = [b for b in builds if b not in ("old", "new")]
    if variants:
        print()
        print("| grid | ranks | new (mean) | " + " | ".join("%s (mean; / new)" % v for v in variants) + " |")
        print("|---|---|---|" + "---|" * len(variants))
        for grid in grids:
            nm = median("new", grid, compute, "comm_per_layer_mean_ms")
            if nm is None: continue
            cells = []
            for v in variants:
                m = median(v, grid, compute, "comm_per_layer_mean_ms")
                cells.append("-" if m is None else "%.4f (%.2fx)" % (m, m / nm if nm > 0 else float("inf")))
            print("| %s | %s | %.4f | %s |" % (grid, ranks[grid], nm, " | ".join(cells)))
if computes == ["yes", "no"]:
    print()
    print("Communication = the network's part + the wait for the slowest rank (ms per layer, medians)")
    print("| grid | ranks | " + " | ".join(builds) + " |")
    print("|---|---|" + "---|" * len(builds))
    for grid in grids:
        cells = []
        for b in builds:
            c, n = median(b, grid, "yes", "comm_per_layer_mean_ms"), median(b, grid, "no", "comm_per_layer_mean_ms")
            cells.append("-" if c is None or n is None else "%.4f = %.4f + %.4f" % (c, n, c - n))
        print("| %s | %s | %s |" % (grid, ranks[grid], " | ".join(cells)))
EOF
