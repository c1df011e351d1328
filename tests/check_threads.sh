#!/bin/sh
# check_threads.sh EXE: runs an example in --quick mode at --threads 1 and
# --threads 2 and checks that the digest of its trained parameters (the
# RESULT line's params=) is the same: lossgrad's results are the same bits
# at every thread count where lg_threads_bitwise says so (the RESULT line's
# threads_bitwise=1); elsewhere the check is skipped (exit 77).
set -eu
exe=$1
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
field() { echo "$2" | tr ' ' '\n' | sed -n "s/^$1=//p"; }
r1=$("$exe" --quick --threads 1 --out "$out/1" | grep '^RESULT example=') || { echo "no RESULT line"; exit 1; }
r2=$("$exe" --quick --threads 2 --out "$out/2" | grep '^RESULT example=') || { echo "no RESULT line"; exit 1; }
p1=$(field params "$r1") p2=$(field params "$r2")
[ -n "$p1" ] && [ -n "$p2" ] || { echo "RESULT has no params="; exit 1; }
if [ "$(field threads_bitwise "$r1")" != 1 ] || [ "$(field threads_bitwise "$r2")" != 1 ]; then
    echo "this BLAS does not keep split products' bits (lg_threads_bitwise): skipped"
    exit 77
fi
echo "params at 1 thread $p1, at 2 threads $p2"
[ "$p1" = "$p2" ] || { echo "FAILED: the trained parameters differ between 1 and 2 threads"; exit 1; }
echo "same bits"
