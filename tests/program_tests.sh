#!/usr/bin/env bash
# program_tests.sh: the sdnn program end to end, under mpirun with 1 to 4 ranks: the command
# line (help, refused options), the generated problem in every format x parallelism x rank count
# (all agree with the verifier and with each other), the official data (Challenge: PASS, skipped
# with a message when ../shared/data is absent), and bad input (one clear message, non-zero
# exit on every rank, no output file left). Writes "passed failed skipped" to the file $1.
set -u
cd "$(dirname "$0")/.."
out_file=$1
MPIRUN=${MPIRUN:-mpirun --oversubscribe $([ "$(id -u)" = 0 ] && echo --allow-run-as-root)}
data=${SDNN_DATA:-../shared/data/graphchallenge}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
passed=0 failed=0 skipped=0
ok() { passed=$((passed + 1)); echo "[ program  OK ] $1"; }
bad() { failed=$((failed + 1)); echo "[ program FAIL ] $1"; [ -n "${2:-}" ] && sed 's/^/    /' "$2" | tail -20; }
skip() { skipped=$((skipped + 1)); echo "[ program SKIP ] $1"; }

# run NAME EXPECTED_STATUS COMMAND...: runs it, keeps its output in $tmp/out, checks the status.
run() {
  local name=$1 want=$2; shift 2
  "$@" > "$tmp/out" 2>&1
  local got=$?
  if [ "$got" -ne "$want" ]; then bad "$name (exit $got, expected $want)" "$tmp/out"; return 1; fi
  return 0
}
expect() {  # expect NAME PATTERN: the last output holds PATTERN
  if grep -qE -- "$2" "$tmp/out"; then ok "$1"; else bad "$1 (no '$2' in the output)" "$tmp/out"; fi
}
value() { grep '^summary ' "$tmp/out" | tr ' ' '\n' | sed -n "s/^$1=//p"; }

# --- command line
run "help" 0 ./sdnn --help && {
  missing=""
  for opt in --network --input --neurons --layers --inputs --bias --seed --truth --out --format --parallel --threads --block-rows --verify --no-verify --quiet --help; do
    grep -q -- "$opt" "$tmp/out" || missing="$missing $opt"
  done
  if [ -z "$missing" ]; then ok "help lists every option"; else bad "help misses$missing" "$tmp/out"; fi
}
run "unknown option" 2 ./sdnn --frobnicate && expect "unknown option is named" "unknown option '--frobnicate'"
run "csr with model parallelism" 2 ./sdnn --format csr --parallel model && expect "csr+model refused clearly" "needs --format csc"
run "network without input" 2 ./sdnn --network /nonexistent --neurons 1024 --layers 1 && expect "network needs input" "go together"
run "bad number" 2 ./sdnn --threads zero && expect "bad number named" "--threads needs a number"

# --- the generated problem: every combination and rank count agrees with the verifier and rank 1
small=(--inputs 2000 --layers 40 --neurons 256 -q)
reference=""
for np in 1 2 3 4; do
  for combo in "csr data" "csc data" "csc model"; do
    set -- $combo
    name="generated problem, $np rank(s), $1/$2"
    if run "$name" 0 $MPIRUN -np "$np" ./sdnn "${small[@]}" --format "$1" --parallel "$2" --threads 2; then
      line="$(value categories) $(value checksum)"
      if ! grep -q "Verifier: PASS" "$tmp/out"; then bad "$name: verifier" "$tmp/out"
      elif [ -z "$reference" ]; then reference=$line; ok "$name (categories checksum = $line)"
      elif [ "$line" = "$reference" ]; then ok "$name"
      else bad "$name: '$line' differs from '$reference'" "$tmp/out"; fi
    fi
  done
done
case "$reference" in "0 "*|"2000 "*|"") bad "generated problem: a non-trivial share of rows should survive (got '$reference')";; *) ok "generated problem is non-trivial ($reference)";; esac

# --- the official data
if [ -f "$data/sparse-images-1024-first1200.tsv" ] && [ -d "$data/neuron1024" ]; then
  official=(--network "$data/neuron1024" --neurons 1024 --layers 120 --input "$data/sparse-images-1024-first1200.tsv"
            --inputs 1200 --truth "$data/neuron1024-l120-categories-first1200.tsv" -q)
  for np in 1 2 4; do
    for combo in "csr data" "csc data" "csc model"; do
      set -- $combo
      name="official 1200 inputs x 120 layers, $np rank(s), $1/$2"
      run "$name" 0 $MPIRUN -np "$np" ./sdnn "${official[@]}" --format "$1" --parallel "$2" --threads 2 --out "$tmp/categories.tsv" &&
        expect "$name: Challenge PASS, 19 categories" "Challenge: PASS \(19 categories"
      if cmp -s "$tmp/categories.tsv" "$data/neuron1024-l120-categories-first1200.tsv"; then ok "$name: --out equals the official file"
      else bad "$name: --out differs from the official file"; fi
      rm -f "$tmp/categories.tsv"
    done
  done
  # A wrong truth is a FAIL with exit 1.
  head -n 18 "$data/neuron1024-l120-categories-first1200.tsv" > "$tmp/short-truth.tsv"
  run "official data against a wrong truth" 1 ./sdnn "${official[@]}" --truth "$tmp/short-truth.tsv" && expect "wrong truth gives FAIL" "Challenge: FAIL"
else
  skip "official data not found at $data (set SDNN_DATA): official-data program tests skipped"
fi

# --- bad input: one message naming file and line, non-zero exit on every rank, no output left
mkdir -p "$tmp/net"
./sdnn --help > /dev/null
for l in 1 2 3; do
  awk 'BEGIN{for(i=1;i<=64;i++){for(b=0;b<32;b++){printf "%d\t%d\t6.250000e-02\n", i, (i+b*2-1)%64+1}}}' > "$tmp/net/n64-l$l.tsv"
done
printf '1\t1\t1\n2\t5\t1\n' > "$tmp/input.tsv"
printf '1\t1\t1\n2\tx\t1\n' > "$tmp/bad-input.tsv"
for np in 1 2 3; do
  run "good small official-format run, $np rank(s)" 0 $MPIRUN -np "$np" ./sdnn --network "$tmp/net" --neurons 64 --layers 3 --input "$tmp/input.tsv" --inputs 4 --verify -q &&
    expect "good small run verifies, $np rank(s)" "Verifier: PASS"
  run "malformed input line, $np rank(s)" 1 $MPIRUN -np "$np" ./sdnn --network "$tmp/net" --neurons 64 --layers 3 --input "$tmp/bad-input.tsv" --inputs 4 --out "$tmp/out.tsv" -q &&
    expect "malformed line named with file and line, $np rank(s)" "bad-input.tsv:2: expected a column index"
  [ -e "$tmp/out.tsv" ] && bad "no output file after an error, $np rank(s)" || ok "no output file after an error, $np rank(s)"
  [ "$(grep -c 'sdnn: error' "$tmp/out")" = 1 ] && ok "exactly one error line, $np rank(s)" || bad "exactly one error line, $np rank(s)" "$tmp/out"
  run "missing layer file, $np rank(s)" 1 $MPIRUN -np "$np" ./sdnn --network "$tmp/net" --neurons 64 --layers 4 --input "$tmp/input.tsv" --inputs 4 -q &&
    expect "missing layer named, $np rank(s)" "n64-l4.tsv: missing layer file \(layer 4 of 4\)"
  run "output folder missing, $np rank(s)" 1 $MPIRUN -np "$np" ./sdnn --network "$tmp/net" --neurons 64 --layers 3 --input "$tmp/input.tsv" --inputs 4 --out "$tmp/no/such/dir/c.tsv" -q &&
    expect "missing output folder named, $np rank(s)" "does not exist"
done

echo "$passed $failed $skipped" > "$out_file"
