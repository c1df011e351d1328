#!/bin/sh
# check.sh SOURCE_DIR BUILD_DIR: installs lossgrad from BUILD_DIR into a
# deep temporary prefix, then, as a user would:
#  - builds and runs tests/consumer (C, and C++ when there is a C++
#    compiler) with find_package, and the examples as a user's programs;
#  - builds and runs it with plain pkg-config (pkgconfig.sh, which also
#    checks that no installed package file names the prefix);
#  - moves the installed tree elsewhere and builds against it again, with
#    pkg-config and with find_package (as a C++-only project when there is
#    g++).
set -eu
src=$1 build=$2
root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
prefix=$root/installed/opt/lossgrad-prefix
cmake --install "$build" --prefix "$prefix" > /dev/null
cmake -S "$src/tests/consumer" -B "$root/consumer-build" -DCMAKE_PREFIX_PATH="$prefix" > /dev/null
cmake --build "$root/consumer-build" > /dev/null
"$root/consumer-build/consumer"
if [ -e "$root/consumer-build/consumer_cxx" ]; then
    "$root/consumer-build/consumer_cxx"
    echo "C++ consumer (find_package): ok"
fi
# the examples, built against the installed library as a user's programs
cmake -S "$src/examples" -B "$root/examples-build" -DCMAKE_PREFIX_PATH="$prefix" > /dev/null
cmake --build "$root/examples-build" -j2 > /dev/null
"$root/examples-build/robust_regression" --quick --out "$root/out" | tail -n 1
sh "$src/tests/consumer/pkgconfig.sh" "$src" "$prefix" "$root/pc"

mv "$root/installed" "$root/moved"
moved=$root/moved/opt/lossgrad-prefix
sh "$src/tests/consumer/pkgconfig.sh" "$src" "$moved" "$root/pc-moved"
if command -v "${CXX:-g++}" > /dev/null 2>&1; then
    cmake -S "$src/tests/consumer" -B "$root/consumer-moved" -DCMAKE_PREFIX_PATH="$moved" \
          -DCONSUMER_CXX_ONLY=ON > /dev/null
    cmake --build "$root/consumer-moved" > /dev/null
    "$root/consumer-moved/consumer_cxx"
    echo "C++-only project (find_package, moved prefix): ok"
else
    cmake -S "$src/tests/consumer" -B "$root/consumer-moved" -DCMAKE_PREFIX_PATH="$moved" > /dev/null
    cmake --build "$root/consumer-moved" > /dev/null
    "$root/consumer-moved/consumer"
fi
echo "moved prefix: ok"
