#!/usr/bin/env bash
# sim_tests.sh: sdnn under SimGrid's SMPI (build/sim/sdnn, make sim): the official data (1200
# inputs, 1024 neurons x 120 layers) on 2 and 8 simulated ranks of bench/platforms/omnipath_32x28.xml,
# data x data and data x model, and the pipeline (2 x 4) on 8, each `Challenge: PASS`, the
# summary's categories and checksum equal to a real one-rank run's, and the memory line naming the
# simulator's whole process. Skipped, with the reason, when smpirun, the SMPI build or
# ../shared/data is missing; not run in sanitizer builds.
# Writes "passed failed skipped" to the file $1. Called by tests/run_all.sh and make sim-test.
set -u
cd "$(dirname "$0")/.."
out_file=$1
binary=${SDNN_SIM_BINARY:-build/sim/sdnn}
data=${SDNN_DATA:-../shared/data/graphchallenge}
platform=bench/platforms/omnipath_32x28.xml
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
passed=0 failed=0 skipped=0
ok() { passed=$((passed + 1)); echo "[ sim  OK ] $1"; }
bad() { failed=$((failed + 1)); echo "[ sim FAIL ] $1"; [ -n "${2:-}" ] && sed 's/^/    /' "$2" | tail -20; }
skip() { skipped=$((skipped + 1)); echo "[ sim SKIP ] $1"; }
finish() { echo "$passed $failed $skipped" > "$out_file"; exit 0; }

cases=("2 data csr 1x1" "2 model csc 1x2" "8 data csr 1x1" "8 model csc 2x4" "8 pipeline csr 2x4")
reason=""
if [ -n "${SDNN_SAN:-}" ]; then
  # Not a skip: make test builds build/sim only without SAN (the Makefile's test rule), so a
  # sanitizer run has no SMPI binary of its own by design; the plain make test runs these cases.
  echo "[ sim  N/A ] sanitizer build ($SDNN_SAN): the SMPI runs belong to the plain make test"
  finish
fi
if ! command -v smpirun > /dev/null; then reason="smpirun not installed (make sim-deps installs libsimgrid-dev)"
elif [ ! -x "$binary" ]; then reason="$binary not built (make sim)"
elif [ ! -d "$data/neuron1024" ]; then reason="no official data in $data"
fi
if [ -n "$reason" ]; then
  for c in "${cases[@]}"; do skip "SMPI official data, ranks/strategy/format/grid $c: $reason"; done
  finish
fi

official=(--network "$data/neuron1024" --neurons 1024 --layers 120 --inputs 1200
          --input "$data/sparse-images-1024-first1200.tsv" --truth "$data/neuron1024-l120-categories-first1200.tsv"
          --threads 1 --no-verify -q)
value() { grep '^summary ' "$1" | tr ' ' '\n' | sed -n "s/^$2=//p"; }
# The real one-rank answer to compare with (the simulated ranks must give the same categories and checksum).
reference=""
if [ -x ./sdnn ] && ./sdnn "${official[@]}" > "$tmp/real" 2>&1; then
  reference="$(value "$tmp/real" categories) $(value "$tmp/real" checksum)"
fi
printf 'node-0:4\nnode-1:4\n' > "$tmp/hosts"  # 8 ranks: 4 per node, so that both the network and shared memory carry traffic
for c in "${cases[@]}"; do
  set -- $c
  strategy="data x $2"; [ "$2" = pipeline ] && strategy=pipeline
  name="SMPI official data, $1 simulated ranks, $strategy, $3, grid $4"
  grid=(); [ "$2" != data ] && grid=(--grid "$4")
  if ! timeout 600 smpirun -np "$1" -platform "$platform" -hostfile "$tmp/hosts" --cfg=smpi/host-speed:3.1Gf \
        --log=root.thresh:warning "$binary" "${official[@]}" --strategy "$2" --format "$3" "${grid[@]}" \
        > "$tmp/out" 2>&1; then
    bad "$name (exit status)" "$tmp/out"
  elif ! grep -q "Challenge: PASS" "$tmp/out"; then bad "$name: no 'Challenge: PASS'" "$tmp/out"
  elif ! grep -q "the simulator's whole process: all $1 simulated ranks" "$tmp/out"; then
    bad "$name: memory not named as the simulator's process" "$tmp/out"
  elif grep -q "WARNING" "$tmp/out"; then bad "$name: SMPI warned" "$tmp/out"
  elif [ -n "$reference" ] && [ "$(value "$tmp/out" categories) $(value "$tmp/out" checksum)" != "$reference" ]; then
    bad "$name: categories/checksum differ from the real run's ($reference)" "$tmp/out"
  else ok "$name (Challenge: PASS, simulated inference $(value "$tmp/out" infer_s) s)"; fi
done
# Data x model over two simulated nodes, 1 x 8: each rank reads its 3 peers on its node in place
# from the node's shared segment and gets the 4 others through the window, so fewer bytes go
# through the window than when every peer's do (SDNN_MODEL_COMM=window-gets), and none are lost.
bytes_of() { python3 -c 'import json,sys; print(sum(k["bytes_pulled"] for k in json.load(open(sys.argv[1]))["ranks"]))' "$1"; }
for how in node window-gets; do
  name="SMPI official data, 8 simulated ranks on 2 nodes, data x model 1x8, $how"
  if ! SDNN_MODEL_COMM=$([ $how = node ] || echo $how) timeout 600 smpirun -np 8 -platform "$platform" -hostfile "$tmp/hosts" \
        --cfg=smpi/host-speed:3.1Gf --log=root.thresh:warning "$binary" "${official[@]}" --strategy model --grid 1x8 \
        --report "$tmp/report-$how.json" > "$tmp/out" 2>&1; then
    bad "$name (exit status)" "$tmp/out"
  elif ! grep -q "Challenge: PASS" "$tmp/out"; then bad "$name: no 'Challenge: PASS'" "$tmp/out"
  elif grep -q "WARNING" "$tmp/out"; then bad "$name: SMPI warned" "$tmp/out"
  elif [ -n "$reference" ] && [ "$(value "$tmp/out" categories) $(value "$tmp/out" checksum)" != "$reference" ]; then
    bad "$name: categories/checksum differ from the real run's ($reference)" "$tmp/out"
  else ok "$name (Challenge: PASS, $(bytes_of "$tmp/report-$how.json") bytes through the window)"; fi
done
if [ -f "$tmp/report-node.json" ] && [ -f "$tmp/report-window-gets.json" ]; then
  node=$(bytes_of "$tmp/report-node.json") gets=$(bytes_of "$tmp/report-window-gets.json")
  name="SMPI data x model 1x8 on 2 nodes: peers on the node read in place"
  if [ "$node" -gt 0 ] && [ "$node" -lt "$gets" ]; then ok "$name ($node bytes through the window, $gets with window-gets)"
  else bad "$name: $node bytes through the window, $gets with window-gets (expected 0 < first < second)"; fi
else
  bad "SMPI data x model 1x8 on 2 nodes: a run left no report"
fi
finish
