#!/bin/sh
# check_fashion_dist.sh MPIEXEC FASHION_DIST: runs the example's --quick
# form at 1, 2 and 4 ranks and checks that the trained parameters (the
# RESULT line's params= digest, over both models) and the MLP's and the
# CNN's test accuracies are identical at every rank count (deterministic
# mode) and each accuracy is >= 0.6.
set -eu
mpirun=$1
bin=$2
export OMPI_MCA_btl_vader_single_copy_mechanism=none
first=""
for np in 1 2 4; do
    line=$("$mpirun" --allow-run-as-root --oversubscribe -np "$np" "$bin" --quick --threads 1 |
        grep '^RESULT') || { echo "np $np: no RESULT line"; exit 1; }
    echo "$line"
    got=$(echo "$line" | tr ' ' '\n' | grep -E '^(test_accuracy|cnn_test_accuracy|params)=' | tr '\n' ' ')
    case $line in *" ranks=$np "*) ;; *) echo "np $np: not ranks=$np"; exit 1 ;; esac
    if [ -z "$first" ]; then
        first=$got
        for f in test_accuracy cnn_test_accuracy; do
            acc=$(echo "$line" | tr ' ' '\n' | sed -n "s/^$f=//p")
            awk -v a="$acc" 'BEGIN { exit !(a != "" && a >= 0.6) }' || { echo "$f '$acc' < 0.6"; exit 1; }
        done
    elif [ "$got" != "$first" ]; then
        echo "np $np: $got differs from np 1: $first"
        exit 1
    fi
done
echo "identical at 1, 2 and 4 ranks: $first"
