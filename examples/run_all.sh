#!/bin/sh
# run_all.sh [BUILD_DIR] [--demo] [EXTRA FLAGS...]: runs every example with
# its default settings (or with the extra flags, e.g. --quick), then prints a
# table of each one's metrics beside the reference figures and the wall time.
# --demo (the README's demo command) runs the long examples ($long) in
# their --quick form, so the whole demo stays a few minutes; their rows are
# marked "(quick)". Pictures and CSV logs land in results/<example>/.
set -eu
build=${1:-build}
[ $# -gt 0 ] && shift
long="fashion_cnn fashion_embed fashion_ctc charlm gradient_penalty"
demo=0
if [ "${1:-}" = "--demo" ]; then
    demo=1
    shift
fi
examples="robust_regression fashion_softmax fashion_binary fashion_multilabel fashion_mlp fashion_cnn fashion_masks fashion_embed fashion_ctc charlm gradient_penalty loss_shapes"
log=$(mktemp)
trap 'rm -f "$log"' EXIT
start=$(date +%s)
for ex in $examples; do
    flags=""
    if [ $demo = 1 ] && echo " $long " | grep -q " $ex "; then
        flags="--quick"
        echo "=== $ex (--quick in the demo: examples/run_all.sh $build runs it in full)"
    else
        echo "=== $ex"
    fi
    # shellcheck disable=SC2086
    "$build/examples/$ex" $flags "$@" | sed "s/^RESULT example=$ex /RESULT example=$ex${flags:+(quick)} /" |
        tee -a "$log" | grep -v '^RESULT' | tail -n 4
done
# the data-parallel example, only where it was built (LG_MPI): 2 ranks
if [ -x "$build/examples/fashion_dist" ] && command -v mpirun >/dev/null; then
    echo "=== fashion_dist (mpirun -np 2)"
    # shellcheck disable=SC2086
    OMPI_MCA_btl_vader_single_copy_mechanism=none mpirun --allow-run-as-root --oversubscribe -np 2 \
        "$build/examples/fashion_dist" "$@" | tee -a "$log" | grep -v '^RESULT' | tail -n 4
fi
total=$(( $(date +%s) - start ))
echo
printf '%-20s %-24s %8s   %-34s %6s\n' example metric value "reference" seconds
grep '^RESULT' "$log" | awk '
function show(ex, key, ref,    i, kv) {
    for (i = 1; i <= NF; i++) { split($i, kv, "="); if (kv[1] == key) printf "%-20s %-24s %8s   %-34s %6s\n", ex (quick ? " (quick)" : ""), key, kv[2], ref, secs }
}
{
    split($2, e, "="); ex = e[2]; quick = sub(/\(quick\)$/, "", ex)
    for (i = 1; i <= NF; i++) { split($i, kv, "="); if (kv[1] == "seconds") secs = kv[2] }
    if (ex == "robust_regression") {
        show(ex, "l1_slope_error", "< 0.05 (robust)"); show(ex, "smooth_l1_slope_error", "< 0.05 (robust)")
        show(ex, "huber_slope_error", "< 0.05 (robust)"); show(ex, "mse_slope_error", "pulled away by the outliers")
    } else if (ex == "fashion_softmax") {
        show(ex, "test_accuracy", ">= 0.84 (paper: logistic 0.842)"); show(ex, "smoothed_test_accuracy", "with label smoothing 0.1")
    } else if (ex == "fashion_binary") {
        show(ex, "recall", "no pos_weight"); show(ex, "recall_pos_weight", "pos_weight raises recall")
        show(ex, "f1", "no pos_weight"); show(ex, "f1_pos_weight", "")
        show(ex, "recall_focal", "focal loss, alpha 0.9, gamma 2"); show(ex, "f1_focal", "")
    } else if (ex == "fashion_multilabel") {
        show(ex, "micro_f1", ">= 0.85"); show(ex, "exact_match", "")
    } else if (ex == "fashion_mlp") {
        show(ex, "test_accuracy", ">= 0.887 (paper: MLP 0.871)"); show(ex, "student_accuracy", "linear, distilled")
    } else if (ex == "fashion_cnn") {
        show(ex, "test_accuracy", ">= 0.92 (benchmark: 2 conv 0.925)")
    } else if (ex == "fashion_masks") {
        show(ex, "bce_iou", "BCE alone"); show(ex, "dice_iou", "BCE + soft Dice")
    } else if (ex == "fashion_embed") {
        show(ex, "knn_accuracy", ">= 0.87, above raw pixels"); show(ex, "raw_knn_accuracy", "1-NN on pixels (paper ~0.85)")
        show(ex, "hinge_knn_accuracy", "hinge on distances, 5 epochs"); show(ex, "contrastive_knn_accuracy", "contrastive, 5 epochs")
        show(ex, "nt_xent_knn_accuracy", "NT-Xent, 5 epochs"); show(ex, "cnn_knn_accuracy", ">= 0.90 (issue 16), CNN, 4 epochs")
    } else if (ex == "fashion_ctc") {
        show(ex, "label_error_rate", "<= 0.10 (GRU alone: 0.140)"); show(ex, "length_accuracy", ">= 0.95"); show(ex, "sequence_accuracy", ">= 0.70")
    } else if (ex == "charlm") {
        show(ex, "transformer_bpc", "<= 4.2 bits per char, 60 s"); show(ex, "gru_bpc", "GRU of the same size, 60 s")
        show(ex, "unigram_bits", "letter frequencies alone")
    } else if (ex == "gradient_penalty") {
        show(ex, "mode_coverage", ">= 0.875 of the 8 modes"); show(ex, "high_quality_fraction", ">= 0.45, within 4 sd of a mode")
        show(ex, "mean_grad_norm", "within 0.05 of 1 (the penalty)"); show(ex, "clip_coverage", "weight clipping, no penalty")
        show(ex, "clip_hq_fraction", "weight clipping"); show(ex, "clip_grad_norm", "weight clipping: << 1")
    } else if (ex == "fashion_dist") {
        show(ex, "test_accuracy", "MLP, equal at any rank count (2 ranks)"); show(ex, "examples_per_second", "MLP")
        show(ex, "cnn_test_accuracy", "CNN, 1 epoch, equal at any rank count"); show(ex, "cnn_examples_per_second", "CNN")
    } else if (ex == "loss_shapes") {
        show(ex, "mse_closed_form_rel_err", "<= 1e-8: 2 lmax(XtX)/N"); show(ex, "mse_edge_ratio", "within 0.1 of 1: at 2 / lr")
        show(ex, "mse_sharpness", "top eigenvalue, MSE"); show(ex, "huber_sharpness", "Huber")
        show(ex, "l1_sharpness", "L1"); show(ex, "ce_sharpness", "cross-entropy")
        show(ex, "ce_smooth_sharpness", "< ce: label smoothing 0.1")
    }
}'
echo
echo "all examples: ${total}s; pictures (SVG) and CSV logs in results/<example>/"
