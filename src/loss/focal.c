/* focal.c: sigmoid_focal_loss and dice_loss (composites; not in PyTorch's
 * core, see docs/losses.md).
 *
 *   focal (torchvision.ops.sigmoid_focal_loss), p = sigmoid(x):
 *       ce = bce_with_logits(x, y),  p_t = p y + (1 - p)(1 - y),
 *       l = ce (1 - p_t)^gamma  [* (alpha y + (1 - alpha)(1 - y)) if alpha >= 0]
 *   soft Dice, per sample n and class c, sums over the trailing dims:
 *       dice = (2 sum p t + smooth) / (sum p + sum t + smooth)
 *       l_n  = sum_c w_c (1 - dice_nc) / sum_c w_c
 */
#include "loss.h"

#include <math.h>

static lg_tensor *sigmoid_focal_loss_body(lg_ctx *ctx, lg_tensor *input, lg_tensor *target,
                                          const lg_focal_opts *opts)
{
    static const char who[] = "lg_sigmoid_focal_loss";
    lg_focal_opts o;
    if (!lgC_opts(ctx, who, &lgL_desc_lg_focal_opts, opts, &o))
        return NULL;
    double alpha = o.alpha;
    double gamma = o.gamma;
    if (!lgL_pair(ctx, input, target, who) || !lgL_reduction(ctx, o.reduction, false, who))
        return NULL;
    if (!(gamma >= 0) || isinf(gamma) || isnan(alpha) || alpha > 1)
        return lgC_error(ctx, LG_ERR_VALUE,
                         "%s: alpha = %g and gamma = %g, expected alpha <= 1 (negative: off) and a "
                         "finite gamma >= 0",
                         who, alpha, gamma);
    if (!lgL_in_range(ctx, target, 0, 1, who, "target"))
        return NULL;
    lg_tensor *y = target, *not_y = lg_add_scalar(ctx, lg_neg(ctx, target), 1);
    lg_tensor *p = lg_sigmoid(ctx, input);
    lg_tensor *ce = lg_binary_cross_entropy_with_logits(
        ctx, input, target, &(lg_bce_logits_opts){ .reduction = LG_REDUCTION_NONE });
    lg_tensor *p_t =
        lg_add(ctx, lg_mul(ctx, p, y), lg_mul(ctx, lg_add_scalar(ctx, lg_neg(ctx, p), 1), not_y));
    lg_tensor *l =
        lg_mul(ctx, ce, lg_pow_scalar(ctx, lg_add_scalar(ctx, lg_neg(ctx, p_t), 1), gamma));
    if (alpha >= 0)
        l = lg_mul(ctx,
                   lg_add(ctx, lg_mul_scalar(ctx, y, alpha), lg_mul_scalar(ctx, not_y, 1 - alpha)),
                   l);
    return lgL_reduce(ctx, l, o.reduction);
}

lg_tensor *lg_sigmoid_focal_loss(lg_ctx *ctx, lg_tensor *input, lg_tensor *target,
                                 const lg_focal_opts *opts)
{
    const char *outer = lgL_enter(ctx, "lg_sigmoid_focal_loss");
    return lgL_leave(ctx, outer, ctx ? sigmoid_focal_loss_body(ctx, input, target, opts) : NULL);
}

static lg_tensor *dice_loss_body(lg_ctx *ctx, lg_tensor *input, lg_tensor *target,
                                 const lg_dice_opts *opts)
{
    static const char who[] = "lg_dice_loss";
    lg_dice_opts o;
    if (!lgC_opts(ctx, who, &lgL_desc_lg_dice_opts, opts, &o))
        return NULL;
    double smooth = o.smooth;
    lg_dice_activation act = o.activation;
    lg_tensor *w = o.weight;
    if (!lgL_pair(ctx, input, target, who) || !lgL_reduction(ctx, o.reduction, false, who))
        return NULL;
    int n = lg_tensor_ndim(input);
    if (n < 2) {
        char a[160];
        lgT_shape_str(input, a, sizeof a);
        return lgC_error(ctx, LG_ERR_SHAPE, "%s: input has shape %s, expected [N, C, d1..dk]", who,
                         a);
    }
    int64_t C = lg_tensor_shape(input)[1];
    if (!(smooth >= 0) || isinf(smooth))
        return lgC_error(ctx, LG_ERR_VALUE, "%s: smooth = %g, expected a finite value >= 0", who,
                         smooth);
    if (act != LG_DICE_PROBS && act != LG_DICE_SIGMOID && act != LG_DICE_SOFTMAX)
        return lgC_error(ctx, LG_ERR_VALUE,
                         "%s: activation %d is not one of PROBS, SIGMOID, SOFTMAX", who, (int)act);
    if (!lgL_in_range(ctx, target, 0, 1, who, "target"))
        return NULL;
    double wsum = (double)C;
    if (w) {
        if (!lgT_ok_float(ctx, w, who, "weight"))
            return NULL;
        if (lg_tensor_dtype(w) != lg_tensor_dtype(input) || lg_tensor_ndim(w) != 1 ||
            lg_tensor_shape(w)[0] != C) {
            char a[160];
            lgT_shape_str(w, a, sizeof a);
            return lgC_error(ctx, LG_ERR_SHAPE,
                             "%s: weight is %s %s, expected [%lld] of input's dtype", who,
                             lgT_dtype_name(lg_tensor_dtype(w)), a, (long long)C);
        }
        if (!lgL_in_range(ctx, w, 0, INFINITY, who, "weight"))
            return NULL;
        wsum = 0;
        for (int64_t c = 0; c < C; c++)
            wsum += lgT_get(w, c);
        if (!(wsum > 0))
            return lgC_error(ctx, LG_ERR_VALUE, "%s: the weights sum to 0, expected a positive sum",
                             who);
    }
    lg_tensor *p = act == LG_DICE_SIGMOID   ? lg_sigmoid(ctx, input)
                   : act == LG_DICE_SOFTMAX ? lg_softmax(ctx, input, 1)
                                            : input;
    lg_tensor *inter = lg_mul(ctx, p, target), *sp = p, *st = target;
    if (n > 2) { /* sum over d1..dk */
        int axes[LG_MAX_DIMS];
        for (int d = 2; d < n; d++)
            axes[d - 2] = d;
        inter = lg_sum(ctx, inter, n - 2, axes, false);
        sp = lg_sum(ctx, sp, n - 2, axes, false);
        st = lg_sum(ctx, st, n - 2, axes, false);
    }
    lg_tensor *num = lg_add_scalar(ctx, lg_mul_scalar(ctx, inter, 2), smooth);
    lg_tensor *den = lg_add_scalar(ctx, lg_add(ctx, sp, st), smooth);
    lg_tensor *miss = lg_add_scalar(ctx, lg_neg(ctx, lg_div(ctx, num, den)), 1); /* [N, C] */
    lg_tensor *l;
    if (w) /* the weights' sum on the tape: a weight that requires grad gets its whole gradient */
        l = lg_div(ctx, lg_sum(ctx, lg_mul(ctx, miss, w), 1, (int[]){ 1 }, false),
                   lg_sum(ctx, w, 0, NULL, false));
    else
        l = lg_mul_scalar(ctx, lg_sum(ctx, miss, 1, (int[]){ 1 }, false), 1 / wsum);
    return lgL_reduce(ctx, l, o.reduction);
}

lg_tensor *lg_dice_loss(lg_ctx *ctx, lg_tensor *input, lg_tensor *target, const lg_dice_opts *opts)
{
    const char *outer = lgL_enter(ctx, "lg_dice_loss");
    return lgL_leave(ctx, outer, ctx ? dice_loss_body(ctx, input, target, opts) : NULL);
}
