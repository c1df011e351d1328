#!/bin/sh
# check.sh on SOURCE_DIR BUILD_DIR MPIEXEC: installs lossgrad (built with
# LG_MPI) from BUILD_DIR into a deep temporary prefix, moves the installed
# tree elsewhere (it must be relocatable), then, as a user would:
#  - checks that no installed .pc or .cmake file names the prefix, and that
#    lossgrad/dist.h, lossgrad-dist.pc and the dist targets file are there;
#  - the CMake package: a plain find_package(lossgrad) does not look for
#    MPI, OPTIONAL_COMPONENTS dist and COMPONENTS dist give lossgrad::dist,
#    an unknown component fails;
#  - builds tests/consumer_dist/main.c with find_package(... COMPONENTS
#    dist) + lossgrad::dist, and with `pkg-config --cflags --libs
#    lossgrad-dist`, and runs each under MPIEXEC at 2 ranks.
# check.sh off SOURCE_DIR: configures and builds lossgrad with -DLG_MPI=OFF
# (no tests, no examples) in a temporary directory, installs it, and checks
# that neither lossgrad/dist.h nor lossgrad-dist.pc nor the dist targets file
# is installed, that a plain find_package(lossgrad) works and that
# COMPONENTS dist fails with the reason (built without MPI).
set -eu
mode=$1 src=$2
root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT

# probe KIND PREFIX [EXPECT_DIST]: tests/consumer_dist/probe, which must configure
probe() {
    cmake -S "$src/tests/consumer_dist/probe" -B "$root/probe-$1" -DPROBE="$1" \
          -DCMAKE_PREFIX_PATH="$2" -DEXPECT_DIST="${3:-OFF}" > "$root/probe-$1.log" 2>&1 \
        || { cat "$root/probe-$1.log"; echo "probe $1: configuring failed"; exit 1; }
    grep "probe $1: ok" "$root/probe-$1.log"
}
# probe_fails KIND PREFIX PATTERN: the probe must fail, its output matching PATTERN
probe_fails() {
    if cmake -S "$src/tests/consumer_dist/probe" -B "$root/probe-$1" -DPROBE="$1" \
             -DCMAKE_PREFIX_PATH="$2" > "$root/probe-$1.log" 2>&1; then
        cat "$root/probe-$1.log"; echo "probe $1: configured, but it must fail"; exit 1
    fi
    grep -q "$3" "$root/probe-$1.log" \
        || { cat "$root/probe-$1.log"; echo "probe $1: failed without the message '$3'"; exit 1; }
    echo "probe $1: fails as it must: $(grep -o "$3.*" "$root/probe-$1.log" | head -n 1)"
}

if [ "$mode" = off ]; then
    cmake -S "$src" -B "$root/build" -DLG_MPI=OFF -DLG_BUILD_TESTS=OFF -DLG_BUILD_EXAMPLES=OFF \
          > "$root/configure.log" 2>&1 || { cat "$root/configure.log"; exit 1; }
    cmake --build "$root/build" -j2 > "$root/build.log" 2>&1 || { tail -n 50 "$root/build.log"; exit 1; }
    prefix=$root/installed/prefix
    cmake --install "$root/build" --prefix "$prefix" > /dev/null
    for f in dist.h lossgrad-dist.pc lossgradDistTargets.cmake 'liblossgrad_dist*'; do
        found=$(find "$prefix" -name "$f")
        if [ -n "$found" ]; then echo "installed without LG_MPI: $found"; exit 1; fi
    done
    [ -e "$prefix/include/lossgrad.h" ] || { echo "no lossgrad.h installed"; exit 1; }
    echo "LG_MPI=OFF install: no dist.h, lossgrad-dist.pc, dist targets or lossgrad_dist"
    probe plain "$prefix"
    probe optional "$prefix" OFF
    probe_fails required "$prefix" "built without MPI"
    exit 0
fi

build=$3 mpiexec=$4
# the other dist tests' setting (Open MPI's shared-memory transport in containers)
OMPI_MCA_btl_vader_single_copy_mechanism=none
export OMPI_MCA_btl_vader_single_copy_mechanism
installed=$root/installed/opt/lossgrad-prefix
cmake --install "$build" --prefix "$installed" > /dev/null
if grep -rlF "$installed" "$installed" --include='*.pc' --include='*.cmake'; then
    echo "the files above name the install prefix $installed"; exit 1
fi
mv "$root/installed" "$root/moved"
prefix=$root/moved/opt/lossgrad-prefix
for f in lossgrad/dist.h lossgrad-dist.pc lossgradDistTargets.cmake; do
    [ -n "$(find "$prefix" -path "*/$f")" ] || { echo "not installed: $f"; exit 1; }
done
run() { # run PROGRAM [MPIEXEC OPTIONS]: at 2 ranks; OK from rank 0, a zero exit status
    prog=$1; shift
    out=$("$mpiexec" --allow-run-as-root --oversubscribe -np 2 "$@" "$prog" 2>&1) \
        || { echo "$out"; echo "$prog failed under $mpiexec"; exit 1; }
    echo "$out"
    echo "$out" | grep -q '^OK' || { echo "$prog: no OK"; exit 1; }
}

# the CMake package
probe plain "$prefix"
probe optional "$prefix" ON
probe required "$prefix"
probe_fails unknown "$prefix" "no component nonsense"
cmake -S "$src/tests/consumer_dist" -B "$root/cmake-build" -DCMAKE_PREFIX_PATH="$prefix" > /dev/null
cmake --build "$root/cmake-build" > /dev/null
run "$root/cmake-build/consumer_dist"
echo "find_package(lossgrad COMPONENTS dist), moved prefix: ok"

# pkg-config: a static install links with --static, a shared one runs
# with LD_LIBRARY_PATH at the installed libdir (passed to the ranks)
PKG_CONFIG_PATH=$(dirname "$(find "$prefix" -name lossgrad-dist.pc)")
export PKG_CONFIG_PATH
libdir=$(pkg-config --variable=libdir lossgrad-dist)
if [ -e "$libdir/liblossgrad_dist.a" ]; then
    kind=static
    flags=$(pkg-config --cflags --libs --static lossgrad-dist)
else
    kind=shared
    flags=$(pkg-config --cflags --libs lossgrad-dist)
    LD_LIBRARY_PATH=$libdir${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
    export LD_LIBRARY_PATH
fi
echo "pkg-config lossgrad-dist ($kind): $flags"
# shellcheck disable=SC2086 # $flags is a list of words
cc -std=c11 -Wall -Wextra -Wpedantic -Werror "$src/tests/consumer_dist/main.c" -o "$root/consumer-dist-pc" $flags -lm
if [ $kind = shared ]; then # the installed libraries, not others
    ldd "$root/consumer-dist-pc" | grep -q "liblossgrad_dist\.so.* => $prefix/" \
        || { ldd "$root/consumer-dist-pc"; exit 1; }
    run "$root/consumer-dist-pc" -x LD_LIBRARY_PATH
else
    run "$root/consumer-dist-pc"
fi
echo "pkg-config lossgrad-dist ($kind), moved prefix: ok"
