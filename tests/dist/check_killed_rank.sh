#!/bin/sh
# check_killed_rank.sh MPIRUN TEST_DIST: a rank killed mid-run (SIGKILL,
# test_dist die) ends the whole job with an error within BOUND seconds,
# never a hang: the surviving ranks are blocked in an allreduce the dead
# rank never joins, and Open MPI's launcher, which sees the death, ends
# them. timeout(1) turns a hang into a failure of this test (exit 124).
set -u
mpirun=$1 exe=$2 bound=${BOUND:-30}
start=$(date +%s)
timeout $((bound * 2)) "$mpirun" --allow-run-as-root --oversubscribe -np 2 "$exe" die x >/dev/null 2>&1
rc=$?
elapsed=$(( $(date +%s) - start ))
echo "mpirun exit $rc after $elapsed s (bound $bound s)"
[ "$rc" -ne 124 ] || { echo "FAILED: the job hung"; exit 1; }
[ "$rc" -ne 0 ] || { echo "FAILED: the job reported success"; exit 1; }
[ "$elapsed" -le "$bound" ] || { echo "FAILED: the job took longer than the bound"; exit 1; }
echo "ended with an error within the bound"
