#!/bin/sh
# check_threads.sh EXE: runs an example in --quick mode at --threads 1 and
# --threads 2 and checks that the digest of its trained parameters (the
# RESULT line's params=) is the same: lossgrad's results are the same bits
# at every thread count where lg_threads_bitwise says so (the RESULT line's
# threads_bitwise=1); elsewhere the check is skipped (exit 77). Both runs
# must also report the same number of optimizer steps (steps=, over all
# the models the example trains), at least $min_steps of them: a few
# hundred steps, not a handful, must give the same bits.
set -eu
exe=$1
min_steps=200
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
field() { echo "$2" | tr ' ' '\n' | sed -n "s/^$1=//p"; }
r1=$("$exe" --quick --threads 1 --out "$out/1" | grep '^RESULT example=') || { echo "no RESULT line"; exit 1; }
r2=$("$exe" --quick --threads 2 --out "$out/2" | grep '^RESULT example=') || { echo "no RESULT line"; exit 1; }
s1=$(field steps "$r1") s2=$(field steps "$r2")
case "$s1" in '' | *[!0-9]*) echo "FAILED: the RESULT line at 1 thread has no steps=N"; exit 1 ;; esac
case "$s2" in '' | *[!0-9]*) echo "FAILED: the RESULT line at 2 threads has no steps=N"; exit 1 ;; esac
echo "optimizer steps at 1 thread $s1, at 2 threads $s2"
[ "$s1" = "$s2" ] || { echo "FAILED: the runs took different numbers of optimizer steps"; exit 1; }
[ "$s1" -ge "$min_steps" ] || {
    echo "FAILED: --quick made $s1 optimizer steps, fewer than $min_steps: raise its step count"
    exit 1
}
p1=$(field params "$r1") p2=$(field params "$r2")
if [ -z "$p1" ] || [ -z "$p2" ]; then echo "RESULT has no params="; exit 1; fi
if [ "$(field threads_bitwise "$r1")" != 1 ] || [ "$(field threads_bitwise "$r2")" != 1 ]; then
    echo "this BLAS does not keep split products' bits (lg_threads_bitwise): skipped"
    exit 77
fi
echo "params at 1 thread $p1, at 2 threads $p2"
[ "$p1" = "$p2" ] || { echo "FAILED: the trained parameters differ between 1 and 2 threads"; exit 1; }
echo "same bits"
