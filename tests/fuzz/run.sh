#!/usr/bin/env bash
# run.sh: the libFuzzer runs of make fuzz, FUZZ_SECONDS (default 60) each, both at once.
#   build/fuzz/fuzz_tsv      seeded with every TSV file of tests/corpus (and tests/corpus/fuzz/tsv-*)
#   build/fuzz/fuzz_archive  seeded with the archives of the corpus' good problem (sdnn convert)
#                            and tests/corpus/fuzz/archive-*
# Seeds are copied into a temporary corpus folder (the fuzzer adds its finds there, not to the
# repository). A crash, a sanitizer report or an input slower than 10 s ends that run non-zero and
# leaves the input in build/fuzz/ (crash-*, timeout-*, oom-*): add it to tests/corpus/fuzz/ as a
# regression seed (every run starts by re-running the seeds) and to tests/corpus/cases.tsv when sdnn
# reads it wrong. Exits non-zero when either run failed.
set -u
cd "$(dirname "$0")/../.."
seconds=${FUZZ_SECONDS:-60}
# OpenMP threads that wait passively: spinning ones would take the other fuzzer's core.
export OMP_WAIT_POLICY=passive KMP_BLOCKTIME=0
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/tsv" "$tmp/archive" build/fuzz
cp tests/corpus/*.tsv tests/corpus/good/*.tsv "$tmp/tsv/"
cp tests/corpus/fuzz/tsv-* "$tmp/tsv/" 2>/dev/null
cp tests/corpus/fuzz/archive-* "$tmp/archive/" 2>/dev/null
if ! ./sdnn convert --neurons 32 --network tests/corpus/good --layers 3 --input tests/corpus/good/input.tsv --inputs 6 \
     --out "$tmp/archive" > "$tmp/convert.log" 2>&1; then
  cat "$tmp/convert.log"
  echo "fuzz: sdnn convert failed: no archive seeds"
  exit 1
fi

run() {  # run NAME MAX_LEN: one fuzzer in the background, its log in $tmp/NAME.log
  build/fuzz/"$1" "$tmp/${1#fuzz_}" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=4096 -max_len="$2" \
    -artifact_prefix=build/fuzz/ -print_final_stats=1 > "$tmp/$1.log" 2>&1
}
status=0
run fuzz_tsv 4096 & tsv=$!
run fuzz_archive 8192 & archive=$!
for name in fuzz_tsv fuzz_archive; do
  if [ "$name" = fuzz_tsv ]; then wait $tsv; else wait $archive; fi
  code=$?
  runs=$(sed -nE 's/^stat::number_of_executed_units: *([0-9]+)/\1/p' "$tmp/$name.log")
  if [ "$code" = 0 ]; then
    echo "fuzz: $name: ${runs:-?} inputs in ${seconds} s, no crash"
  else
    status=1
    echo "fuzz: $name FAILED (exit $code):"
    grep -vE '^(#|INFO:|")' "$tmp/$name.log" | tail -40
  fi
done
exit $status
