#!/bin/sh
# bench/dist.sh [BUILD_DIR] [compare_dist.py options]: builds bench_dist and
# runs the data-parallel benchmark (issue 19): the MLP training step at
# per-rank batch 128, lossgrad (lossgrad_dist over Open MPI) beside PyTorch
# DDP over Gloo, 1 and 2 ranks of 1 thread each, and both without dist.
#   bench/dist.sh build --rounds 5
# Needs Open MPI (LG_MPI) and python3-torch (/usr/bin/python3).
set -eu
build=${1:-build}
[ $# -gt 0 ] && shift
cmake -S "$(dirname "$0")/.." -B "$build" -DLG_BUILD_BENCH=ON >/dev/null
cmake --build "$build" -j2 --target bench_dist >/dev/null
exec /usr/bin/python3 "$(dirname "$0")/compare_dist.py" --build "$build" "$@"
