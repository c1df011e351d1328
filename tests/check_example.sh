#!/bin/sh
# check_example.sh EXE CSV LOSS_COLUMN KEY OP LIMIT [KEY OP LIMIT ...]
# Runs an example in --quick mode and checks that (1) it prints its RESULT
# line, (2) the loss in column LOSS_COLUMN of its CSV log fell from the first
# epoch to the last (for the first model when the log holds several), and
# (3) each RESULT value KEY is >= (OP ge) or <= (OP le) its LIMIT.
set -eu
exe=$1 csv=$2 col=$3
shift 3
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
log=$("$exe" --quick --out "$out")
echo "$log" | tail -n 3
result=$(echo "$log" | grep '^RESULT example=') || { echo "no RESULT line"; exit 1; }
while [ $# -ge 3 ]; do
    key=$1 op=$2 limit=$3
    shift 3
    value=$(echo "$result" | tr ' ' '\n' | sed -n "s/^$key=//p")
    [ -n "$value" ] || { echo "RESULT has no $key"; exit 1; }
    awk -v v="$value" -v l="$limit" -v op="$op" -v k="$key" 'BEGIN {
        ok = (op == "ge") ? (v >= l) : (v <= l);
        printf "%s = %s (%s %s): %s\n", k, v, op, l, ok ? "ok" : "FAILED"; exit !ok }'
done
[ $# -eq 0 ] || { echo "check_example.sh: arguments must come in KEY OP LIMIT triples"; exit 1; }
awk -F, -v col="$col" '
    NR == 1 { for (i = 1; i <= NF; i++) if ($i == col) c = i; grouped = ($1 == "model" || $1 == "label_smoothing"); next }
    NR == 2 { first = $c; group = $1; last = $c; next }
    !grouped || $1 == group { last = $c }
    END { if (!c) { print "no column " col; exit 1 }
          printf "%s: %g -> %g: %s\n", col, first, last, last < first ? "falls" : "DOES NOT FALL"; exit !(last < first) }' "$out/$csv"
