#!/bin/sh
# bench/run.sh [BUILD_DIR] [compare.py options]: builds the benchmark and runs
# lossgrad against PyTorch side by side: libtorch from C++ (when libtorch-dev
# is installed) and PyTorch from Python (needs python3-torch).
# Before/after a change: bench/ab.py --old OLD/bench/bench_losses --new
# build/bench/bench_losses alternates two lossgrad builds instead.
# Only the layer cases (issue 16, docs/performance.md):
#   bench/run.sh build --filter 'conv2d/|batch_norm/|layer_norm/|max_pool2d/|step/cnn|attention/|step/transformer'
set -eu
build=${1:-build}
[ $# -gt 0 ] && shift
cmake -S "$(dirname "$0")/.." -B "$build" -DLG_BUILD_BENCH=ON >/dev/null
cmake --build "$build" -j2 --target bench_losses >/dev/null
# KANN's configuration, when the examples (its data reader) are built
cmake --build "$build" -j2 --target bench_kann_config >/dev/null 2>&1 || true
# the target bench_libtorch exists when CMake found libtorch (bench/CMakeLists.txt)
if grep -q '^Torch_DIR:PATH=/' "$build/CMakeCache.txt"; then
    cmake --build "$build" -j2 --target bench_libtorch >/dev/null
fi
exec /usr/bin/python3 "$(dirname "$0")/compare.py" --build "$build" "$@"
