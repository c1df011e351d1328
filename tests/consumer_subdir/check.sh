#!/bin/sh
# check.sh SOURCE_DIR: builds lossgrad as a shared library through
# add_subdirectory in a user's project, runs the program, checks that the
# shared library exports nothing but lg_ symbols; then the same project
# through FetchContent (static). Each build is also installed, as a user
# installing the project would, with unusual library directories
# (lib/x86_64-linux-gnu, lib64 and inc/lossgrad-0): each install is used
# with pkg-config, then moved and used with find_package.
set -eu
src=$1
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
cmake -S "$src/tests/consumer_subdir" -B "$dir" -DLOSSGRAD_SOURCE_DIR="$src" -DBUILD_SHARED_LIBS=ON \
      -DCMAKE_INSTALL_LIBDIR=lib/x86_64-linux-gnu > /dev/null
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
cmake -S "$src/tests/consumer_subdir" -B "$dir/fc" -DLOSSGRAD_SOURCE_DIR="$src" -DUSE_FETCHCONTENT=ON \
      -DCMAKE_INSTALL_LIBDIR=lib64 -DCMAKE_INSTALL_INCLUDEDIR=inc/lossgrad-0 > /dev/null
cmake --build "$dir/fc" -j2 > /dev/null
"$dir/fc/consumer"

# the two builds installed, used with pkg-config, moved, used with find_package
for kind in shared static; do
    if [ $kind = shared ]; then b=$dir; else b=$dir/fc; fi
    p=$dir/inst-$kind/prefix
    cmake --install "$b" --prefix "$p" > /dev/null
    sh "$src/tests/consumer/pkgconfig.sh" "$src" "$p" "$dir/pc-$kind"
    mv "$dir/inst-$kind" "$dir/moved-$kind"
    # find_package does not look in lib64 on Debian (no FIND_LIBRARY_USE_LIB64_PATHS):
    # the static install is named by lossgrad_DIR
    if [ $kind = shared ]; then where=-DCMAKE_PREFIX_PATH=$dir/moved-$kind/prefix
    else where=-Dlossgrad_DIR=$dir/moved-$kind/prefix/lib64/cmake/lossgrad; fi
    cmake -S "$src/tests/consumer" -B "$dir/fp-$kind" "$where" > /dev/null
    cmake --build "$dir/fp-$kind" > /dev/null
    "$dir/fp-$kind/consumer"
    if [ -e "$dir/fp-$kind/consumer_cxx" ]; then "$dir/fp-$kind/consumer_cxx"; fi
    echo "$kind install (find_package, moved prefix): ok"
done
