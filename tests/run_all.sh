#!/usr/bin/env bash
# run_all.sh: every test of sdnn. The GoogleTest suite (formats, kernels, engine, readers,
# generator, official data), then the program itself under mpirun with 1 to 4 ranks
# (tests/program_tests.sh), the end-to-end checks (tests/end_to_end_tests.sh), the bad-input corpus with
# 2 and 3 ranks (tests/corpus_tests.sh) and the official data under SimGrid's SMPI when it is
# installed (tests/sim_tests.sh; skipped otherwise, not run in sanitizer builds).
# Each part's wall time is printed as it ends ("=== time: PART N s") and again, all together,
# before the last line (docs/testing.md, 'Time'). Ends with one line "tests: N passed, N failed, N skipped".
# Called by `make test` with SDNN_TEST_BINARY and MPIRUN set, and SDNN_SAN (the sanitizers of a
# SAN build) and SDNN_QUICK (1: a smaller program matrix) when given.
set -u
cd "$(dirname "$0")/.."
binary=${SDNN_TEST_BINARY:-build/release/sdnn_tests}
passed=0 failed=0 skipped=0 library_skipped=0
times=""
# timed PART START: prints PART's wall time since START (seconds) and keeps it for the summary.
timed() { local t=$((SECONDS - $2)); echo "=== time: $1 $t s"; times="$times${times:+, }$1 $t s"; }

# A sanitizer build: every report of every process (the test binaries, each rank) goes to a file
# in $san_logs, and any file there fails the run whatever the exit statuses were (a report in a
# run that is meant to fail would pass otherwise). Leaks that Open MPI's libraries keep for the
# life of the process are suppressed (tests/lsan.supp); sdnn's own are reported. The suppressions
# need whole allocation stacks: Open MPI is built without frame pointers, where the fast unwinder
# stops one frame deep, so malloc stacks are unwound the slow way (about 25% more time).
san_logs=""
if [ -n "${SDNN_SAN:-}" ]; then
  san_logs=$(mktemp -d)
  export ASAN_OPTIONS="log_path=$san_logs/asan:detect_leaks=1:halt_on_error=1:fast_unwind_on_malloc=0"
  export LSAN_OPTIONS="suppressions=$PWD/tests/lsan.supp:print_suppressions=0"
  export UBSAN_OPTIONS="log_path=$san_logs/ubsan:print_stacktrace=1:halt_on_error=1"
  echo "sanitizers: $SDNN_SAN (reports collected in $san_logs)"
fi

log=$(mktemp)
part_start=$SECONDS
"$binary" --gtest_brief=0 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
count() { grep -E "^\[  $1 *\] [0-9]+ test" "$log" | head -1 | sed -E 's/^\[[^]]*\] ([0-9]+).*/\1/'; }
g_passed=$(count PASSED); g_failed=$(count FAILED); g_skipped=$(count SKIPPED)
passed=$((passed + ${g_passed:-0})); failed=$((failed + ${g_failed:-0})); skipped=$((skipped + ${g_skipped:-0}))
if [ "$status" -ne 0 ] && [ "${g_failed:-0}" -eq 0 ]; then failed=$((failed + 1)); echo "GoogleTest suite exited with $status"; fi
rm -f "$log"
timed "$(basename "$binary")" "$part_start"

# The MPI tests, under mpirun with 1 to 4 ranks (rank 0 prints; a failure on any rank counts).
mpi_binary=${SDNN_MPI_TEST_BINARY:-build/release/sdnn_mpi_tests}
mpirun_cmd=${MPIRUN:-mpirun --oversubscribe $([ "$(id -u)" = 0 ] && echo --allow-run-as-root)}
part_start=$SECONDS
for np in 1 2 3 4; do
  log=$(mktemp)
  echo "=== MPI tests with $np rank(s)"
  # No colours: Open MPI's mpirun hands GoogleTest a terminal, whose colour codes hid the counts.
  timeout 600 $mpirun_cmd -np "$np" "$mpi_binary" --gtest_color=no 2>&1 | tee "$log"
  status=${PIPESTATUS[0]}
  m_passed=$(count PASSED); m_failed=$(count FAILED); m_skipped=$(count SKIPPED)
  passed=$((passed + ${m_passed:-0})); failed=$((failed + ${m_failed:-0}))
  # The MPI tests skip only for what the MPI library cannot do (Open MPI 4.1 refuses MPI_Win_create
  # on a one-process communicator; a test that needs 2 ranks at 1), never for want of data: counted
  # as skipped, not failed under SDNN_REQUIRE_DATA.
  library_skipped=$((library_skipped + ${m_skipped:-0}))
  if [ "$status" -ne 0 ] && [ "${m_failed:-0}" -eq 0 ]; then failed=$((failed + 1)); echo "MPI tests with $np rank(s) exited with $status"; fi
  rm -f "$log"
done
timed "$(basename "$mpi_binary") (1-4 ranks)" "$part_start"

for script in tests/program_tests.sh tests/end_to_end_tests.sh tests/corpus_tests.sh tests/sim_tests.sh; do
  result=$(mktemp)
  part_start=$SECONDS
  echo "0 1 0" > "$result"  # a script that dies before writing its counts is one failure
  MPIRUN=${MPIRUN:-} bash "$script" "$result"
  read -r p f s < "$result"
  rm -f "$result"
  passed=$((passed + p)); failed=$((failed + f)); skipped=$((skipped + s))
  timed "$(basename "$script" .sh)" "$part_start"
done

if [ -n "$san_logs" ]; then
  if [ -z "$(ls -A "$san_logs")" ]; then
    passed=$((passed + 1)); echo "[ sanitizer OK ] no report from any process ($SDNN_SAN)"
  else
    failed=$((failed + 1)); echo "[ sanitizer FAIL ] $(ls "$san_logs" | wc -l) report(s) ($SDNN_SAN):"
    for report in "$san_logs"/*; do echo "--- $report"; head -40 "$report"; done
  fi
  rm -rf "$san_logs"
fi

# SDNN_REQUIRE_DATA=1 (CI, where the data and an unprivileged user are always there): nothing but
# the MPI library's limits may skip.
if [ "${SDNN_REQUIRE_DATA:-0}" = 1 ] && [ "$skipped" -gt 0 ]; then
  failed=$((failed + 1)); echo "[ skips FAIL ] $skipped test(s) skipped with SDNN_REQUIRE_DATA=1"
fi
[ "$library_skipped" -gt 0 ] && echo "[ MPI  SKIP ] $library_skipped MPI test(s) skipped for what this MPI library cannot do (listed above)"
skipped=$((skipped + library_skipped))

echo
echo "times: $times (all: $SECONDS s)"
echo "tests: $passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]
