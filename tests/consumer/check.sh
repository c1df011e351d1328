#!/bin/sh
# check.sh SOURCE_DIR BUILD_DIR: installs lossgrad from BUILD_DIR into a
# temporary prefix, then builds and runs tests/consumer with find_package,
# and again with pkg-config and a plain cc command line.
set -eu
src=$1 build=$2
prefix=$(mktemp -d)
trap 'rm -rf "$prefix"' EXIT
cmake --install "$build" --prefix "$prefix" > /dev/null
cmake -S "$src/tests/consumer" -B "$prefix/consumer-build" -DCMAKE_PREFIX_PATH="$prefix" > /dev/null
cmake --build "$prefix/consumer-build" > /dev/null
"$prefix/consumer-build/consumer"
# the examples, built against the installed library as a user's programs
cmake -S "$src/examples" -B "$prefix/examples-build" -DCMAKE_PREFIX_PATH="$prefix" > /dev/null
cmake --build "$prefix/examples-build" -j2 > /dev/null
"$prefix/examples-build/robust_regression" --quick --out "$prefix/out" | tail -n 1
export PKG_CONFIG_PATH="$prefix/lib/pkgconfig:$prefix/lib64/pkgconfig:/usr/lib/$(gcc -print-multiarch)/openblas-openmp/pkgconfig:${PKG_CONFIG_PATH:-}"
flags=$(pkg-config --define-variable=prefix="$prefix" --cflags --libs --static lossgrad)
cc -std=c11 "$src/tests/consumer/main.c" -o "$prefix/consumer-pc" $flags
"$prefix/consumer-pc"
