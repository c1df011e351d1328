#!/bin/sh
# check.sh SOURCE_DIR: builds lossgrad as a shared library through
# add_subdirectory in a user's project, runs the program, checks that the
# shared library exports nothing but lg_ symbols; then the same project
# through FetchContent.
set -eu
src=$1
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
cmake -S "$src/tests/consumer_subdir" -B "$dir" -DLOSSGRAD_SOURCE_DIR="$src" -DBUILD_SHARED_LIBS=ON > /dev/null
cmake --build "$dir" -j2 > /dev/null
"$dir/consumer"
lib=$(find "$dir" -name 'liblossgrad.so.*.*' | head -n 1)
[ -n "$lib" ] || { echo "no shared library built"; exit 1; }
others=$(nm -D --defined-only "$lib" | awk '{print $3}' | grep -v '^lg_' || true)
count=$(nm -D --defined-only "$lib" | grep -c ' lg_' || true)
if [ -n "$others" ]; then
    echo "non-lg_ symbols exported by $lib:"; echo "$others"; exit 1
fi
echo "$lib exports $count symbols, all lg_"
# FetchContent, static
cmake -S "$src/tests/consumer_subdir" -B "$dir/fc" -DLOSSGRAD_SOURCE_DIR="$src" -DUSE_FETCHCONTENT=ON > /dev/null
cmake --build "$dir/fc" -j2 > /dev/null
"$dir/fc/consumer"
