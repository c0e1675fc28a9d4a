#!/usr/bin/env bash
# end_to_end_tests.sh: the program's own checks, checked from outside the program.
#  1. Fault injection (SDNN_TEST_PERTURB, test only, docs/testing.md): one value of one rank's
#     result made wrong gives "Verifier: FAIL", "Challenge: FAIL" (when the row was no category)
#     and exit 1, for every strategy and rank count 1-4.
#  2. The final activations (sdnn --out-activations, original numbering) of every format x
#     parallelism x strategy x hashing mode x rank count 1-4 equal, entry by entry, those of the
#     serial reference computed from the files by tests/tools/sdnn_check (no loader of the program,
#     no hashing, no split): on a random problem with a different bias per neuron (a network
#     archive; its TSV twin with one --bias too) and on the official data (skipped when absent,
#     a failure with SDNN_REQUIRE_DATA=1).
# SDNN_QUICK=1: ranks 1 and 3, hashing none and both. Writes "passed failed skipped" to $1.
set -u
cd "$(dirname "$0")/.."
out_file=$1
MPIRUN=${MPIRUN:-mpirun --oversubscribe $([ "$(id -u)" = 0 ] && echo --allow-run-as-root)}
check=${SDNN_CHECK_BINARY:-build/release/sdnn_check}
data=${SDNN_DATA:-../shared/data/graphchallenge}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
passed=0 failed=0 skipped=0
if [ "${SDNN_QUICK:-0}" = 1 ]; then
  rank_counts="1 3" hashes="none both"
else
  rank_counts="1 2 3 4" hashes="none input network both"
fi
ok() { passed=$((passed + 1)); echo "[ end2end  OK ] $1"; }
bad() { failed=$((failed + 1)); echo "[ end2end FAIL ] $1"; if [ -n "${2:-}" ]; then sed 's/^/    /' "$2" | tail -20; fi; return 0; }
skip() { skipped=$((skipped + 1)); echo "[ end2end SKIP ] $1"; }
skip_data() { if [ "${SDNN_REQUIRE_DATA:-0}" = 1 ]; then bad "$1 (SDNN_REQUIRE_DATA=1)"; else skip "$1"; fi; }
value() { grep '^summary ' "$tmp/out" | tr ' ' '\n' | sed -n "s/^$1=//p"; }

# grids NP: the data x model grids of NP ranks.
grids() { case $1 in 1) echo 1x1 ;; 2) echo 1x2 2x1 ;; 3) echo 1x3 3x1 ;; 4) echo 1x4 2x2 4x1 ;; esac; }
# configurations NP: "ARGS" of every format x parallelism x strategy for NP ranks, one a line.
configurations() {
  echo "--format csr --parallel data"
  echo "--format csc --parallel data"
  echo "--format csc --parallel model"
  for grid in $(grids "$1"); do echo "--strategy model --grid $grid"; done
  # The pipeline's grids with at most 3 stages (the corpus problem has 3 layers), and --reuse.
  for grid in $(grids "$1"); do [ "${grid#*x}" -le 3 ] && echo "--strategy pipeline --grid $grid"; done
  echo "--format csr --parallel data --reuse"
}

# --- 1. Fault injection (hashing none and both in turn): the good corpus problem (32 neurons, 3 layers, 6 inputs; rows 1, 4 and
# 6 are its categories), one value made wrong on one rank.
good=(--network tests/corpus/good --neurons 32 --layers 3 --input tests/corpus/good/input.tsv --inputs 6
      --truth tests/corpus/good/truth.tsv --verify -q)
for np in $rank_counts; do
  mapfile -t configs < <(configurations "$np")
  for k in "${!configs[@]}"; do
    config=${configs[$k]}
    for hash in $( [ $(( (np + k) % 2 )) = 0 ] && echo both || echo none ); do
      name="fault injected, $np rank(s), $config, hash $hash"
      SDNN_TEST_PERTURB=2 $MPIRUN -np "$np" ./sdnn "${good[@]}" $config --hash "$hash" --threads 2 > "$tmp/out" 2>&1
      status=$?
      if [ "$status" = 1 ] && grep -q "^Verifier: FAIL" "$tmp/out" && grep -q "^Challenge: FAIL" "$tmp/out" &&
         [ "$(value verify)" = FAIL ] && [ "$(value challenge)" = FAIL ]; then ok "$name: Verifier FAIL, Challenge FAIL, exit 1"
      else bad "$name: expected Verifier FAIL, Challenge FAIL, exit 1 (exit $status)" "$tmp/out"; fi
    done
  done
done
# A wrong value in a row that is a category anyway: the verifier alone sees it.
SDNN_TEST_PERTURB=4 $MPIRUN -np 2 ./sdnn "${good[@]}" --hash both > "$tmp/out" 2>&1
status=$?
if [ "$status" = 1 ] && grep -q "^Verifier: FAIL" "$tmp/out" && grep -q "^Challenge: PASS" "$tmp/out"; then
  ok "fault in a category row: Verifier FAIL, Challenge PASS, exit 1"
else bad "fault in a category row: expected Verifier FAIL, Challenge PASS, exit 1 (exit $status)" "$tmp/out"; fi
# The generated problem (verifier only), both strategies.
for config in "--strategy data" "--strategy model" "--strategy pipeline"; do
  SDNN_TEST_PERTURB=7 $MPIRUN -np 2 ./sdnn --inputs 40 --layers 4 --neurons 64 -q $config > "$tmp/out" 2>&1
  status=$?
  if [ "$status" = 1 ] && grep -q "^Verifier: FAIL" "$tmp/out"; then ok "fault injected, generated problem, $config: Verifier FAIL, exit 1"
  else bad "fault injected, generated problem, $config: expected Verifier FAIL, exit 1 (exit $status)" "$tmp/out"; fi
done
# The same runs without the fault pass (the FAILs above come from the fault alone).
$MPIRUN -np 2 ./sdnn "${good[@]}" --hash both > "$tmp/out" 2>&1 && grep -q "^Verifier: PASS" "$tmp/out" &&
  grep -q "^Challenge: PASS" "$tmp/out" && ok "no fault: Verifier PASS, Challenge PASS" || bad "no fault: expected PASS" "$tmp/out"
SDNN_TEST_PERTURB=7 ./sdnn "${good[@]}" > "$tmp/out" 2>&1
if [ $? = 1 ] && grep -q "SDNN_TEST_PERTURB needs an input row 1..6, not '7'" "$tmp/out"; then ok "a perturbed row out of range is refused"
else bad "a perturbed row out of range is refused" "$tmp/out"; fi

# --- 2. Final activations against the serial reference, random problem with a bias per neuron.
# compare NAME PROBLEM-ARGS -- REFERENCE-ARGS: the last run's activations (exit 0, Verifier PASS)
# against sdnn_check's reference.
compare() {
  local name=$1 status=$2 reference=$3
  if [ "$status" != 0 ] || grep -q "^Verifier: FAIL" "$tmp/out"; then bad "$name (exit $status)" "$tmp/out"; return; fi
  if [ ! -s "$tmp/activations.tsv" ]; then bad "$name: no activations written" "$tmp/out"; return; fi
  if $check activations $reference --activations "$tmp/activations.tsv" > "$tmp/check" 2>&1; then ok "$name"
  else bad "$name" "$tmp/check"; fi
}
problem=$tmp/random
mkdir -p "$problem"
if ! $check random-problem --neurons 64 --layers 8 --inputs 50 --seed 13 --out "$problem" > "$tmp/check" 2>&1; then
  bad "sdnn_check random-problem" "$tmp/check"
fi
reference_args="--network $problem/network.sdnn --neurons 64 --layers 8 --input $problem/input.tsv --inputs 50"
: > "$tmp/empty.tsv"
$check activations $reference_args --activations "$tmp/empty.tsv" > "$tmp/check" 2>&1
if grep -qE "^reference: [1-9][0-9][0-9]+ nonzeros in [1-4][0-9] of 50 rows" "$tmp/check"; then ok "random problem is non-trivial ($(head -1 "$tmp/check"))"
else bad "random problem: 100 nonzeros or more, in 10 to 49 of 50 rows, should survive" "$tmp/check"; fi
for np in $rank_counts; do
  mapfile -t configs < <(configurations "$np")
  for config in "${configs[@]}"; do
    for hash in $hashes; do
      # The input alternately as TSV and as an archive.
      input=$problem/input.tsv
      [ $(( (np + ${#hash}) % 2 )) = 0 ] && input=$problem/input.sdnn
      rm -f "$tmp/activations.tsv"
      $MPIRUN -np "$np" ./sdnn --network "$problem/network.sdnn" --neurons 64 --layers 8 --input "$input" --inputs 50 \
        $config --hash "$hash" --threads 2 --verify -q --out-activations "$tmp/activations.tsv" > "$tmp/out" 2>&1
      compare "activations, bias per neuron, $np rank(s), $config, hash $hash, input ${input##*/}" $? "$reference_args"
    done
  done
  # The TSV network (the official format's loader), one bias for all.
  for config in "--format csc --parallel data" "--strategy model"; do
    rm -f "$tmp/activations.tsv"
    $MPIRUN -np "$np" ./sdnn --network "$problem" --neurons 64 --layers 8 --input "$problem/input.tsv" --inputs 50 --bias 0 \
      $config --hash both --threads 2 --verify -q --out-activations "$tmp/activations.tsv" > "$tmp/out" 2>&1
    compare "activations, TSV network, $np rank(s), $config, hash both" $? \
      "--network $problem --neurons 64 --layers 8 --input $problem/input.tsv --inputs 50 --bias 0"
  done
done

# --- The official data: the first run against sdnn_check's reference, every other run equal to it
# byte for byte (the file is sorted and its values printed exactly).
if [ -f "$data/sparse-images-1024-first1200.tsv" ] && [ -d "$data/neuron1024" ]; then
  official=(--network "$data/neuron1024" --neurons 1024 --layers 120 --input "$data/sparse-images-1024-first1200.tsv"
            --inputs 1200 --truth "$data/neuron1024-l120-categories-first1200.tsv" -q)
  first=""
  for np in $rank_counts; do
    configs=("--format csr --parallel data" "--format csc --parallel model" "--strategy model --grid $(grids "$np" | tr ' ' '\n' | tail -1)"
             "--strategy pipeline --grid 1x$np" "--format csr --parallel data --reuse")
    for config in "${configs[@]}"; do
      hash=$(echo $hashes | tr ' ' '\n' | sed -n "$(( (np % $(echo $hashes | wc -w)) + 1 ))p")
      name="official activations, $np rank(s), $config, hash $hash"
      rm -f "$tmp/activations.tsv"
      $MPIRUN -np "$np" ./sdnn "${official[@]}" $config --hash "$hash" --threads 2 --out-activations "$tmp/activations.tsv" > "$tmp/out" 2>&1
      status=$?
      if [ "$status" != 0 ] || ! grep -q "^Challenge: PASS" "$tmp/out"; then bad "$name (exit $status)" "$tmp/out"
      elif [ -z "$first" ]; then
        compare "$name: equal to the serial reference" "$status" \
          "--network $data/neuron1024 --neurons 1024 --layers 120 --input $data/sparse-images-1024-first1200.tsv --inputs 1200"
        cp "$tmp/activations.tsv" "$tmp/official-first.tsv"
        first=$name
      elif cmp -s "$tmp/activations.tsv" "$tmp/official-first.tsv"; then ok "$name: equal to the first"
      else bad "$name: activations differ from those of '$first'"; fi
    done
  done
else
  skip_data "official data not found at $data (set SDNN_DATA): official activations skipped"
fi

echo "$passed $failed $skipped" > "$out_file"
