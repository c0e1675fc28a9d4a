#!/usr/bin/env bash
# run_all.sh: every test of sdnn. The GoogleTest suite (formats, kernels, engine, readers,
# generator, official data), then the program itself under mpirun with 1 to 4 ranks
# (tests/program_tests.sh) and the bad-input corpus with 2 and 3 ranks (tests/corpus_tests.sh).
# Ends with one line "tests: N passed, N failed, N skipped".
# Called by `make test` with SDNN_TEST_BINARY and MPIRUN set.
set -u
cd "$(dirname "$0")/.."
binary=${SDNN_TEST_BINARY:-build/release/sdnn_tests}
passed=0 failed=0 skipped=0

log=$(mktemp)
"$binary" --gtest_brief=0 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
count() { grep -E "^\[  $1 *\] [0-9]+ test" "$log" | head -1 | sed -E 's/^\[[^]]*\] ([0-9]+).*/\1/'; }
g_passed=$(count PASSED); g_failed=$(count FAILED); g_skipped=$(count SKIPPED)
passed=$((passed + ${g_passed:-0})); failed=$((failed + ${g_failed:-0})); skipped=$((skipped + ${g_skipped:-0}))
if [ "$status" -ne 0 ] && [ "${g_failed:-0}" -eq 0 ]; then failed=$((failed + 1)); echo "GoogleTest suite exited with $status"; fi
rm -f "$log"

# The MPI tests, under mpirun with 1 to 4 ranks (rank 0 prints; a failure on any rank counts).
mpi_binary=${SDNN_MPI_TEST_BINARY:-build/release/sdnn_mpi_tests}
mpirun_cmd=${MPIRUN:-mpirun --oversubscribe $([ "$(id -u)" = 0 ] && echo --allow-run-as-root)}
for np in 1 2 3 4; do
  log=$(mktemp)
  echo "=== MPI tests with $np rank(s)"
  timeout 600 $mpirun_cmd -np "$np" "$mpi_binary" 2>&1 | tee "$log"
  status=${PIPESTATUS[0]}
  m_passed=$(count PASSED); m_failed=$(count FAILED); m_skipped=$(count SKIPPED)
  passed=$((passed + ${m_passed:-0})); failed=$((failed + ${m_failed:-0})); skipped=$((skipped + ${m_skipped:-0}))
  if [ "$status" -ne 0 ] && [ "${m_failed:-0}" -eq 0 ]; then failed=$((failed + 1)); echo "MPI tests with $np rank(s) exited with $status"; fi
  rm -f "$log"
done

for script in tests/program_tests.sh tests/corpus_tests.sh; do
  result=$(mktemp)
  echo "0 1 0" > "$result"  # a script that dies before writing its counts is one failure
  MPIRUN=${MPIRUN:-} bash "$script" "$result"
  read -r p f s < "$result"
  rm -f "$result"
  passed=$((passed + p)); failed=$((failed + f)); skipped=$((skipped + s))
done

echo
echo "tests: $passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]
