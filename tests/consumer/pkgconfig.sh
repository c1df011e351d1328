#!/bin/sh
# pkgconfig.sh SOURCE_DIR PREFIX WORK: builds tests/consumer/main.c, and
# main.cpp with g++ when there is one, against the lossgrad installed at
# PREFIX the way the README says: plain pkg-config, nothing but
# PKG_CONFIG_PATH pointing at the installed pkgconfig directory (OpenBLAS's
# and cJSON's .pc files are found where Debian puts them). A static install
# links with --static; a shared one without, and its programs run with
# LD_LIBRARY_PATH set to the installed libdir (what a user of a prefix
# outside the loader's path needs). First, no installed .pc or .cmake file
# may name PREFIX (they must work from anywhere). Binaries go to WORK.
set -eu
src=$1 prefix=$2 work=$3
mkdir -p "$work"
# relocatable: no installed package file knows where it was installed
if grep -rlF "$prefix" "$prefix" --include='*.pc' --include='*.cmake'; then
    echo "the files above name the install prefix $prefix"; exit 1
fi
pc=$(find "$prefix" -name lossgrad.pc)
if [ -z "$pc" ] || [ "$(echo "$pc" | wc -l)" -ne 1 ]; then
    echo "expected one lossgrad.pc under $prefix, found: $pc"; exit 1
fi
PKG_CONFIG_PATH=$(dirname "$pc")
export PKG_CONFIG_PATH
if [ -n "$(find "$prefix" -name liblossgrad.a)" ]; then kind=static lib=liblossgrad.a
else kind=shared lib=liblossgrad.so; fi
libdir=$(pkg-config --variable=libdir lossgrad)
includedir=$(pkg-config --variable=includedir lossgrad)
[ -e "$libdir/$lib" ] || { echo "lossgrad.pc: libdir $libdir has no $lib"; exit 1; }
[ -e "$includedir/lossgrad.h" ] || { echo "lossgrad.pc: includedir $includedir has no lossgrad.h"; exit 1; }
if [ $kind = static ]; then
    flags=$(pkg-config --cflags --libs --static lossgrad)
else
    flags=$(pkg-config --cflags --libs lossgrad)
    LD_LIBRARY_PATH=$libdir${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
    export LD_LIBRARY_PATH
fi
echo "pkg-config ($kind, $pc): $flags"
# shellcheck disable=SC2086 # $flags is a list of words
cc -std=c11 -Wall -Wextra -Wpedantic -Werror "$src/tests/consumer/main.c" -o "$work/consumer-pc" $flags
if [ $kind = shared ]; then # the installed library, not another one
    ldd "$work/consumer-pc" | grep -q "liblossgrad\.so.* => $prefix/" || { ldd "$work/consumer-pc"; exit 1; }
fi
"$work/consumer-pc"
cxx=${CXX:-g++}
if [ -e "$src/tests/consumer/main.cpp" ] && command -v "$cxx" > /dev/null 2>&1; then
    # shellcheck disable=SC2086
    "$cxx" -std=c++17 -Wall -Wextra -pedantic -Werror "$src/tests/consumer/main.cpp" -o "$work/consumer-pc-cxx" $flags
    "$work/consumer-pc-cxx"
    echo "C++ consumer (pkg-config, $kind): ok"
else
    echo "C++ consumer (pkg-config): skipped, no $cxx"
fi
