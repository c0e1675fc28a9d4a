#!/usr/bin/env bash
# program_tests.sh: the sdnn program end to end, under mpirun with 1 to 4 ranks: the command
# line (help, refused options), the generated problem in every format x parallelism x rank count
# (all agree with the verifier and with each other), the official data (Challenge: PASS, skipped
# with a message when ../shared/data is absent), and bad input (one clear message, non-zero
# exit on every rank, no output file left). Writes "passed failed skipped" to the file $1.
# SDNN_QUICK=1: a smaller matrix (ranks 1 and 3, two hashing modes, three grids, fewer official
# runs), for sanitizer builds whose runs are slow.
set -u
cd "$(dirname "$0")/.."
out_file=$1
MPIRUN=${MPIRUN:-mpirun --oversubscribe $([ "$(id -u)" = 0 ] && echo --allow-run-as-root)}
data=${SDNN_DATA:-../shared/data/graphchallenge}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
passed=0 failed=0 skipped=0
if [ "${SDNN_QUICK:-0}" = 1 ]; then
  rank_counts="1 3" hashes="none both" grids="1x2 2x2 3x1" thread_counts="1" block_sizes="7"
  official_cases=("1 csr data none" "3 csc model both")
else
  rank_counts="1 2 3 4" hashes="none input network both" grids="1x1 1x2 2x1 1x3 3x1 1x4 2x2 4x1"
  thread_counts="1 3" block_sizes="1 7 1000"
  official_cases=("1 csr data none" "1 csc data both" "1 csc model input" "2 csr data input" "2 csc model network"
                  "3 csr data both" "4 csc data network" "4 csr data none")
fi
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
  for opt in --network --input --neurons --layers --inputs --bias --seed --truth --out --format --parallel --threads --block-rows --verify --no-verify --quiet --help --strategy --grid --hash --hash-seed --report --report-layers --no-overlap --share-network --max-memory --load-only; do
    grep -q -- "$opt" "$tmp/out" || missing="$missing $opt"
  done
  if [ -z "$missing" ]; then ok "help lists every option"; else bad "help misses$missing" "$tmp/out"; fi
}
run "unknown option" 2 ./sdnn --frobnicate && expect "unknown option is named" "unknown option '--frobnicate'"
run "csr with model parallelism" 2 ./sdnn --format csr --parallel model && expect "csr+model refused clearly" "needs --format csc"
run "network without input" 2 ./sdnn --network /nonexistent --neurons 1024 --layers 1 && expect "network needs input" "go together"
run "bad number" 2 ./sdnn --threads zero && expect "bad number named" "--threads needs a number"
run "zero layers" 2 ./sdnn --layers 0 && expect "zero layers refused" "--layers needs a number >= 1"
run "generated N that is not RadiX-Net" 2 ./sdnn --neurons 100 && expect "generator's N explained" "RadiX-Net needs N = 16 \* 2\^R"

# --- the generated problem: every strategy, format x parallelism, hashing mode and rank count
# agrees with the verifier and with the first run (same categories, same checksum)
small=(--inputs 1500 --layers 30 --neurons 256 -q)
reference=""
check_generated() {  # NAME ARGS...: runs and compares with the reference
  local name=$1; shift
  if run "$name" 0 "$@"; then
    local line="$(value categories) $(value checksum)"
    if ! grep -q "Verifier: PASS" "$tmp/out"; then bad "$name: verifier" "$tmp/out"
    elif [ -z "$reference" ]; then reference=$line; ok "$name (categories checksum = $line)"
    elif [ "$line" = "$reference" ]; then ok "$name"
    else bad "$name: '$line' differs from '$reference'" "$tmp/out"; fi
  fi
}
for np in $rank_counts; do
  for combo in "csr data" "csc data" "csc model"; do
    for hash in $hashes; do
      set -- $combo
      check_generated "generated, data x data, $np rank(s), $1/$2, hash $hash" \
        $MPIRUN -np "$np" ./sdnn "${small[@]}" --format "$1" --parallel "$2" --hash "$hash" --threads 2
    done
  done
done
for grid in $grids; do
  np=$(( ${grid%x*} * ${grid#*x} ))
  for hash in $hashes; do
    check_generated "generated, data x model, grid $grid, hash $hash" \
      $MPIRUN -np "$np" ./sdnn "${small[@]}" --strategy model --grid "$grid" --hash "$hash" --threads 1
  done
done
for np in 1 2 3; do
  check_generated "generated, data x data, one network copy per node, $np rank(s)" \
    $MPIRUN -np "$np" ./sdnn "${small[@]}" --share-network --hash both --threads 1
  expect "shared network reports the memory saved, $np rank(s)" "one copy shared by the $np rank\(s\) of each node"
done
check_generated "generated, data x model without overlap" $MPIRUN -np 2 ./sdnn "${small[@]}" --strategy model --no-overlap
# Determinism: the thread count, the block size of data parallelism and the hashing seed change
# neither the categories nor the checksum (the runs above use 2 threads and the default blocks).
for threads in $thread_counts; do
  for np in 1 2; do
    for combo in "csr data" "csc data" "csc model"; do
      set -- $combo
      check_generated "generated, $np rank(s), $1/$2, $threads thread(s)" \
        $MPIRUN -np "$np" ./sdnn "${small[@]}" --format "$1" --parallel "$2" --threads "$threads"
    done
  done
done
for rows in $block_sizes; do
  for format in csr csc; do
    check_generated "generated, 2 ranks, $format/data, blocks of $rows row(s)" \
      $MPIRUN -np 2 ./sdnn "${small[@]}" --format "$format" --threads 2 --block-rows "$rows"
  done
done
check_generated "generated, 3 ranks, hash both with another seed" $MPIRUN -np 3 ./sdnn "${small[@]}" --hash both --hash-seed 7
case "$reference" in "0 "*|"1500 "*|"") bad "generated problem: a non-trivial share of rows should survive (got '$reference')";; *) ok "generated problem is non-trivial ($reference)";; esac
run "more ranks than input rows" 0 $MPIRUN -np 4 ./sdnn --inputs 3 --layers 5 --neurons 64 -q &&
  expect "more ranks than input rows verifies" "Verifier: PASS"
run "grid that does not match the ranks" 2 $MPIRUN -np 3 ./sdnn --strategy model --grid 2x2 -q &&
  expect "grid mismatch named" "needs 4 ranks, not 3"
run "report" 0 $MPIRUN -np 2 ./sdnn "${small[@]}" --report "$tmp/report.json" --report-layers --strategy model &&
  if python3 -c "import json,sys; r=json.load(open(sys.argv[1])); assert len(r['ranks'])==2 and len(r['ranks'][0]['layers'])==30 and r['run']['imbalance']>=1" "$tmp/report.json" &&
     [ "$(grep -c '^1,' "$tmp/report.csv")" = 31 ]; then ok "report JSON and CSV, per rank and per layer"; else bad "report JSON and CSV" "$tmp/out"; fi

# --load-only: the read figures (bytes, MB/s, memory held) and no inference; it takes no output options.
good=(--network tests/corpus/good --neurons 32 --layers 3 --input tests/corpus/good/input.tsv --inputs 6)
for np in 1 2; do
  run "load only, $np rank(s)" 0 $MPIRUN -np "$np" ./sdnn "${good[@]}" --load-only &&
    expect "load only prints the read rate, $np rank(s)" "^read: .* MB read at [0-9.]+ MB/s" &&
    expect "load only prints the input held, $np rank(s)" "^input: [0-9.]+ MB held by the largest rank" &&
    if grep -q '^inference:' "$tmp/out" || [ "$(value load_only)" != yes ]; then bad "load only runs no inference, $np rank(s)" "$tmp/out"
    else ok "load only runs no inference, $np rank(s)"; fi
done
run "load only with --out" 2 ./sdnn "${good[@]}" --load-only --out "$tmp/x.tsv" && expect "load only refuses outputs" "--load-only reads the problem and stops"
run "read figures of a full run" 0 ./sdnn "${good[@]}" -q && expect "a full run prints the read rate" "^read: .* MB read at [0-9.]+ MB/s" &&
  if [ -n "$(value read_mb_s)" ] && [ -n "$(value input_mb)" ]; then ok "summary holds read_mb_s and input_mb"; else bad "summary holds read_mb_s and input_mb" "$tmp/out"; fi

# --- MPI windows: the backend chosen by hand or by the one-sided check, printed; a check that
# fails (forced by the test-only SDNN_TEST_BREAK_WINDOW_CHECK) switches backend, or stops every
# rank with one message naming the MPI library (docs/mpi.md)
# One rank: runs the command, records its exit status in DIR/<rank>, waits (at most 10 s) for
# every rank's (mpirun ends a job at the first non-zero exit), then exits with that status.
cat > "$tmp/rank_status.sh" <<'EOF'
dir=$1 size=$2
shift 2
"$@"
status=$?
echo "$status" > "$dir/${OMPI_COMM_WORLD_RANK:-${PMI_RANK:-0}}"
i=0
while [ "$(ls "$dir" | wc -l)" -lt "$size" ] && [ "$i" -lt 200 ]; do sleep 0.05; i=$((i + 1)); done
exit "$status"
EOF
run "help lists --window-backend" 0 ./sdnn --help && expect "help lists --window-backend" "--window-backend auto\|allocate\|create"
run "bad --window-backend" 2 ./sdnn --window-backend shared && expect "bad --window-backend named" "--window-backend: the window backend must be auto, allocate or create, not 'shared'"
for how in "--window-backend create" "SDNN_WINDOW_BACKEND=create"; do
  if [ "${how%%=*}" = SDNN_WINDOW_BACKEND ]; then set -- env "$how" $MPIRUN -np 2 ./sdnn "${small[@]}"; else set -- $MPIRUN -np 2 ./sdnn "${small[@]}" $how; fi
  check_generated "generated, 2 ranks, windows by $how" "$@" --strategy model
  expect "windows by $how printed" "^windows: MPI_Win_create over MPI_Alloc_mem \(chosen by hand, checked\)"
done
run "bad SDNN_WINDOW_BACKEND" 1 env SDNN_WINDOW_BACKEND=shared $MPIRUN -np 2 ./sdnn "${small[@]}" --strategy model &&
  expect "bad SDNN_WINDOW_BACKEND named" "sdnn: error: SDNN_WINDOW_BACKEND: the window backend must be auto, allocate or create, not 'shared'"
for np in 2 3; do
  check_generated "generated, $np ranks, MPI_Win_allocate failing the check" \
    env SDNN_TEST_BREAK_WINDOW_CHECK=allocate $MPIRUN -np "$np" ./sdnn "${small[@]}" --strategy model
  [ "$(grep -c 'sdnn: MPI_Win_allocate failed the one-sided check under .* windows use MPI_Win_create over MPI_Alloc_mem from now on' "$tmp/out")" = 1 ] &&
    ok "the switch is said on one line, $np ranks" || bad "the switch is said on one line, $np ranks" "$tmp/out"
  expect "the backend chosen by the check is printed, $np ranks" "^windows: MPI_Win_create over MPI_Alloc_mem \(checked; chosen by the check after MPI_Win_allocate: rank [0-9]+ got [0-9]+ wrong byte"
  # Both backends failing: one message naming the library, a non-zero exit on every rank (each
  # rank's status recorded by a wrapper), no output file.
  rm -rf "$tmp/status" && mkdir -p "$tmp/status"
  run "both window backends failing the check, $np ranks" 1 timeout 60 env SDNN_TEST_BREAK_WINDOW_CHECK=allocate,create $MPIRUN -np "$np" \
      sh "$tmp/rank_status.sh" "$tmp/status" "$np" ./sdnn "${small[@]}" --strategy model --out "$tmp/out.tsv" &&
    expect "the check's failure names the library, $np ranks" "^sdnn: error: this MPI library's one-sided communication returns wrong data \(.+\): MPI_Win_allocate: rank [0-9]+ got [0-9]+ wrong byte\(s\) of [0-9]+ from rank [0-9]+; then MPI_Win_create over MPI_Alloc_mem: .*no window backend can be trusted \(see docs/mpi.md\)$"
  [ "$(grep -c 'sdnn: error' "$tmp/out")" = 1 ] && ok "one error line for the failed check, $np ranks" || bad "one error line for the failed check, $np ranks" "$tmp/out"
  [ "$(cat "$tmp"/status/* 2>/dev/null | grep -cx 1)" = "$np" ] && ok "every rank exits 1 after the failed check, $np ranks" ||
    bad "every rank exits 1 after the failed check, $np ranks (statuses: $(cat "$tmp"/status/* 2>/dev/null | tr '\n' ' '))" "$tmp/out"
  [ -e "$tmp/out.tsv" ] && bad "no output after the failed check, $np ranks" || ok "no output after the failed check, $np ranks"
  run "shared window failing the check, $np ranks" 1 timeout 60 env SDNN_TEST_BREAK_WINDOW_CHECK=shared $MPIRUN -np "$np" ./sdnn "${small[@]}" --share-network &&
    expect "the shared window's failure names the library, $np ranks" "^sdnn: error: this MPI library's one-sided communication returns wrong data \(.+\): MPI_Win_allocate_shared: rank $((np - 1)) got 16 wrong byte\(s\) of 16 from its node's shared segment; shared windows have no other backend \(see docs/mpi.md\)$"
done
if [ -f "$data/sparse-images-1024-first1200.tsv" ] && [ -d "$data/neuron1024" ]; then
  for np in 2 4; do
    run "official data, $np ranks, model strategy, windows printed" 0 $MPIRUN -np "$np" ./sdnn --network "$data/neuron1024" --neurons 1024 --layers 120 \
        --input "$data/sparse-images-1024-first1200.tsv" --inputs 1200 --truth "$data/neuron1024-l120-categories-first1200.tsv" -q --threads 1 --strategy model --hash both &&
      expect "official data, $np ranks: Challenge PASS with the window backend printed" "^windows: MPI_Win_(allocate|create over MPI_Alloc_mem) \(checked" &&
      expect "official data, $np ranks, model strategy: Challenge PASS" "Challenge: PASS \(19 categories"
  done
fi

# --- the official data
if [ -f "$data/sparse-images-1024-first1200.tsv" ] && [ -d "$data/neuron1024" ]; then
  official=(--network "$data/neuron1024" --neurons 1024 --layers 120 --input "$data/sparse-images-1024-first1200.tsv"
            --inputs 1200 --truth "$data/neuron1024-l120-categories-first1200.tsv" -q)
  official_reference=""
  same_as_first_official() {  # NAME: the last run's categories and checksum equal the first official run's
    local line="$(value categories) $(value checksum)"
    if [ -z "$official_reference" ]; then official_reference=$line; ok "$1: categories checksum = $line"
    elif [ "$line" = "$official_reference" ]; then ok "$1: same categories and checksum"
    else bad "$1: '$line' differs from '$official_reference'" "$tmp/out"; fi
  }
  for case_ in "${official_cases[@]}"; do
    set -- $case_
    np=$1; shift
    name="official 1200 inputs x 120 layers, $np rank(s), $1/$2, hash $3"
    run "$name" 0 $MPIRUN -np "$np" ./sdnn "${official[@]}" --format "$1" --parallel "$2" --hash "$3" --threads 2 --out "$tmp/categories.tsv" &&
      expect "$name: Challenge PASS, 19 categories" "Challenge: PASS \(19 categories" && same_as_first_official "$name"
    if cmp -s "$tmp/categories.tsv" "$data/neuron1024-l120-categories-first1200.tsv"; then ok "$name: --out equals the official file"
    else bad "$name: --out differs from the official file"; fi
    rm -f "$tmp/categories.tsv"
  done
  run "official data, one network copy per node, 3 ranks" 0 $MPIRUN -np 3 ./sdnn "${official[@]}" --share-network --format csc --threads 1 &&
    expect "official data with a shared network: Challenge PASS" "Challenge: PASS \(19 categories"
  for grid in $grids; do
    np=$(( ${grid%x*} * ${grid#*x} ))
    hash=$([ $((np % 2)) = 0 ] && echo both || echo network)
    name="official data, data x model, grid $grid, hash $hash"
    run "$name" 0 $MPIRUN -np "$np" ./sdnn "${official[@]}" --strategy model --grid "$grid" --hash "$hash" --threads 1 &&
      expect "$name: Challenge PASS" "Challenge: PASS \(19 categories" && same_as_first_official "$name"
  done
  # The same problem from binary archives (sdnn convert): the same categories and checksum.
  if ./sdnn convert --neurons 1024 --network "$data/neuron1024" --layers 120 --input "$data/sparse-images-1024-first1200.tsv" \
       --inputs 1200 --out "$tmp/archives" > "$tmp/out" 2>&1; then
    name="official data from archives, 2 ranks, csc/data, hash both"
    run "$name" 0 $MPIRUN -np 2 ./sdnn "${official[@]}" --network "$tmp/archives/neuron1024-l120.sdnn" \
        --input "$tmp/archives/sparse-images-1024-1200.sdnn" --format csc --hash both --threads 2 &&
      expect "$name: Challenge PASS" "Challenge: PASS \(19 categories" && same_as_first_official "$name"
  else
    bad "official data: sdnn convert" "$tmp/out"
  fi
  rm -rf "$tmp/archives"
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

# A fault that only the last rank sees: a bad line at the end of the input (the last rank
# parses the end of the file), and a duplicate whose two lines different ranks parse.
{ for i in $(seq 0 179); do printf '%d\t%d\t1\n' $((2 + i / 60)) $((i % 60 + 1)); done; printf '4\t65\t1\n'; } > "$tmp/late-fault.tsv"
{ printf '1\t7\t1\n'; for i in $(seq 0 179); do printf '%d\t%d\t1\n' $((2 + i / 60)) $((i % 60 + 1)); done; printf '1\t7\t1\n'; } > "$tmp/split-duplicate.tsv"
for np in 2 3; do
  run "fault seen by the last rank only, $np ranks" 1 timeout 60 $MPIRUN -np "$np" ./sdnn --network "$tmp/net" --neurons 64 --layers 3 --input "$tmp/late-fault.tsv" --inputs 4 --out "$tmp/out.tsv" -q &&
    expect "fault on another rank named with file and line, $np ranks" "late-fault.tsv:181: column index 65 out of range 1..64"
  [ -e "$tmp/out.tsv" ] && bad "no output after a fault on another rank, $np ranks" || ok "no output after a fault on another rank, $np ranks"
  run "duplicate split across ranks, $np ranks" 1 timeout 60 $MPIRUN -np "$np" ./sdnn --network "$tmp/net" --neurons 64 --layers 3 --input "$tmp/split-duplicate.tsv" --inputs 4 -q &&
    expect "duplicate across ranks named at its second line, $np ranks" "split-duplicate.tsv:182: duplicate entry \(1, 7\)"
done

# Not enough memory: refused before loading, with the estimate and the limit, on every rank.
for np in 1 2; do
  run "run that cannot fit, $np rank(s)" 1 $MPIRUN -np "$np" ./sdnn --max-memory 50M -q --out "$tmp/out.tsv" &&
    expect "refused with the estimate, $np rank(s)" "not enough memory: the run needs about .* per rank .* and 50.0 MB is available per rank"
done
run "bad --max-memory" 2 ./sdnn --max-memory 5X && expect "bad --max-memory named" "--max-memory needs a size"

# A rank killed with SIGKILL mid-run ends the whole job within seconds: non-zero, no output file.
$MPIRUN -np 2 ./sdnn --inputs 60000 --threads 1 -q --no-verify --out "$tmp/killed.tsv" > "$tmp/out" 2>&1 &
launcher=$!
victim=""
for attempt in $(seq 1 100); do
  for p in $(pgrep -x sdnn); do
    # Open MPI's mpirun starts the ranks itself; MPICH's (hydra) through a proxy: parent or grandparent.
    parent=$(awk '/^PPid/{print $2}' /proc/$p/status 2>/dev/null)
    grandparent=$(awk '/^PPid/{print $2}' /proc/${parent:-0}/status 2>/dev/null)
    if { [ "$parent" = "$launcher" ] || [ "$grandparent" = "$launcher" ]; } &&
       tr '\0' '\n' < /proc/$p/environ 2>/dev/null | grep -qxE '(OMPI_COMM_WORLD_RANK|PMI_RANK)=1'; then victim=$p; fi
  done
  [ -n "$victim" ] && break
  sleep 0.1
done
if [ -z "$victim" ]; then
  bad "killed rank: rank 1 never appeared"
  wait $launcher
else
  sleep 1
  kill -9 "$victim"
  killed_at=$(date +%s)
  ( sleep 60; kill -9 $launcher 2>/dev/null ) & watchdog=$!
  wait $launcher; status=$?
  kill $watchdog 2>/dev/null; wait $watchdog 2>/dev/null
  elapsed=$(( $(date +%s) - killed_at ))
  if [ "$status" -ne 0 ] && [ "$elapsed" -le 15 ]; then ok "a killed rank ends the job in ${elapsed}s with exit $status"
  else bad "a killed rank should end the job within 15 s, non-zero (exit $status after ${elapsed}s)" "$tmp/out"; fi
  [ -e "$tmp/killed.tsv" ] && bad "no output file after a killed rank" || ok "no output file after a killed rank"
fi

echo "$passed $failed $skipped" > "$out_file"
