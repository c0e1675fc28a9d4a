#!/bin/sh
# rank_status.sh DIR SIZE COMMAND...: one rank of an mpirun job (mpirun -np SIZE sh tests/rank_status.sh
# DIR SIZE ...). Runs COMMAND, records its exit status in DIR/<rank>, waits (at most 10 s) until
# every rank of the SIZE has recorded its own (mpirun ends a job at the first non-zero exit and
# would kill a rank before it records), then exits with that status. Used by the corpus and program
# tests to check that every rank, not only mpirun, exits non-zero. Open MPI names the rank in
# OMPI_COMM_WORLD_RANK, MPICH's hydra in PMI_RANK.
dir=$1 size=$2
shift 2
"$@"
status=$?
echo "$status" > "$dir/${OMPI_COMM_WORLD_RANK:-${PMI_RANK:-0}}"
i=0
while [ "$(ls "$dir" | wc -l)" -lt "$size" ] && [ "$i" -lt 200 ]; do sleep 0.05; i=$((i + 1)); done
exit "$status"
