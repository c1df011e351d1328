/* binary_cross_entropy.c: binary_cross_entropy, binary_cross_entropy_with_logits
 * and multilabel_soft_margin_loss, and the composites of their pointwise
 * kinds (pointwise.def: bce, bce_logits, mlsm).
 *
 * binary_cross_entropy is a fused kind because PyTorch's gradient is not
 * the derivative of its forward: the forward clamps each log at -100 and
 * the gradient divides by max(x (1 - x), 1e-12) (1e-12 as a float32
 * constant), which keeps it finite at x = 0 and 1 (a stability device no
 * composite reproduces). Its composite (below) is the clamped formula,
 * whose gradient is PyTorch's wherever x (1 - x) >= 1e-12.
 *
 *   bce:  l = (y - 1) max(log(1 - x), -100) - y max(log x, -100)
 *         dx = (x - y) / max(x (1 - x), eps0),  dy = log(1 - x) - log x
 *   with logits:  l = (1 - y) x + (1 + (P - 1) y) (-log_sigmoid(x)),
 *         y smoothed to y (1 - e) + e / 2 first when label_smoothing e > 0
 *   multilabel soft margin:  mean over the last axis of
 *         -w [y log_sigmoid(x) + (1 - y) log_sigmoid(-x)]
 * Without weights, BCE, BCE with logits and multilabel soft margin are the
 * fused primitive of pointwise.c (the last as the class mean of its own
 * element kind), which adds the reduction and, while training, makes the
 * gradient in the forward. Weighted BCE is the same kind unreduced, times
 * the weight, then the reduction; the weighted logit forms are composites.
 */
#include "../autograd/autograd.h"
#include "fused.h"
#include "loss.h"

#include <math.h>

/* The composites of the fused kinds, their oracles. BCE's is the plain
 * formula with the logs clamped at -100: its gradient is the derivative
 * of that, which is PyTorch's except within 1e-12 of x (1 - x) = 0 (see
 * above). */
lg_tensor *lgL_composite_bce(lg_ctx *ctx, const lgL_fused *f)
{
    lg_tensor *x = f->in[0], *y = f->in[1];
    lg_tensor *lx = lg_clamp(ctx, lg_log(ctx, x), -100, INFINITY);
    lg_tensor *l1x =
        lg_clamp(ctx, lg_log(ctx, lg_add_scalar(ctx, lg_neg(ctx, x), 1)), -100, INFINITY);
    lg_tensor *l = lg_sub(ctx, lg_mul(ctx, lg_add_scalar(ctx, y, -1), l1x), lg_mul(ctx, y, lx));
    return lgL_composite_reduce(ctx, f, l);
}

/* (1 - y) x - log_sigmoid(x) */
lg_tensor *lgL_composite_bce_logits(lg_ctx *ctx, const lgL_fused *f)
{
    lg_tensor *x = f->in[0], *y = f->in[1];
    lg_tensor *l = lg_add(ctx, lg_mul(ctx, lg_add_scalar(ctx, lg_neg(ctx, y), 1), x),
                          lg_neg(ctx, lg_log_sigmoid(ctx, x)));
    return lgL_composite_reduce(ctx, f, l);
}

/* -(y log_sigmoid(x) + (1 - y) log_sigmoid(-x)), per element */
lg_tensor *lgL_composite_mlsm(lg_ctx *ctx, const lgL_fused *f)
{
    lg_tensor *x = f->in[0], *y = f->in[1];
    lg_tensor *pos = lg_mul(ctx, y, lg_log_sigmoid(ctx, x));
    lg_tensor *neg =
        lg_mul(ctx, lg_add_scalar(ctx, lg_neg(ctx, y), 1), lg_log_sigmoid(ctx, lg_neg(ctx, x)));
    return lgL_composite_reduce(ctx, f, lg_neg(ctx, lg_add(ctx, pos, neg)));
}

static lg_tensor *binary_cross_entropy_body(lg_ctx *ctx, lg_tensor *input, lg_tensor *target,
                                            const lg_bce_opts *opts)
{
    static const char who[] = "lg_binary_cross_entropy";
    lg_bce_opts o;
    if (!lgC_opts(ctx, who, &lgL_desc_lg_bce_opts, opts, &o))
        return NULL;
    lg_tensor *w = o.weight;
    if (!lgL_pair(ctx, input, target, who) || !lgL_reduction(ctx, o.reduction, false, who) ||
        !lgL_broadcasts_into(ctx, w, input, who, "weight") ||
        !lgL_in_range(ctx, input, 0, 1, who, "input") ||
        !lgL_in_range(ctx, target, 0, 1, who, "target"))
        return NULL;
    if (!w) /* the common case: the fused primitive of pointwise.c, with its reduction */
        return lgL_pointwise(ctx, LGL_PW_bce, input, target, 0, o.reduction, who);
    /* weighted: the same kind per element, times w, then the reduction */
    lg_tensor *l = lgL_pointwise(ctx, LGL_PW_bce, input, target, 0, LG_REDUCTION_NONE, who);
    return lgL_reduce(ctx, lg_mul(ctx, l, w), o.reduction);
}

lg_tensor *lg_binary_cross_entropy(lg_ctx *ctx, lg_tensor *input, lg_tensor *target,
                                   const lg_bce_opts *opts)
{
    const char *outer = lgL_enter(ctx, "lg_binary_cross_entropy");
    return lgL_leave(ctx, outer, ctx ? binary_cross_entropy_body(ctx, input, target, opts) : NULL);
}

static lg_tensor *binary_cross_entropy_with_logits_body(lg_ctx *ctx, lg_tensor *input,
                                                        lg_tensor *target,
                                                        const lg_bce_logits_opts *opts)
{
    static const char who[] = "lg_binary_cross_entropy_with_logits";
    lg_bce_logits_opts o;
    if (!lgC_opts(ctx, who, &lgL_desc_lg_bce_logits_opts, opts, &o))
        return NULL;
    lg_tensor *w = o.weight, *pw = o.pos_weight;
    if (!lgL_pair(ctx, input, target, who) || !lgL_reduction(ctx, o.reduction, false, who) ||
        !lgL_broadcasts_into(ctx, w, input, who, "weight") ||
        !lgL_broadcasts_into(ctx, pw, input, who, "pos_weight") ||
        !lgL_in_range(ctx, target, 0, 1, who, "target"))
        return NULL;
    double e = o.label_smoothing;
    if (!(e >= 0 && e <= 1))
        return lgC_error(ctx, LG_ERR_VALUE, "%s: label_smoothing = %g, expected a value in [0, 1]",
                         who, e);
    if (e > 0)
        target = lg_add_scalar(ctx, lg_mul_scalar(ctx, target, 1 - e), 0.5 * e);
    if (!w && !pw) /* the common case: the fused primitive of pointwise.c */
        return lgL_pointwise(ctx, LGL_PW_bce_logits, input, target, 0, o.reduction, who);
    /* (1 - y) x + c softplus(-x), c = 1 + (P - 1) y */
    lg_tensor *one_minus_y = lg_add_scalar(ctx, lg_neg(ctx, target), 1);
    lg_tensor *sp = lg_neg(ctx, lg_log_sigmoid(ctx, input));
    if (pw)
        sp =
            lg_mul(ctx, lg_add_scalar(ctx, lg_mul(ctx, lg_add_scalar(ctx, pw, -1), target), 1), sp);
    lg_tensor *l = lg_add(ctx, lg_mul(ctx, one_minus_y, input), sp);
    if (w)
        l = lg_mul(ctx, l, w);
    return lgL_reduce(ctx, l, o.reduction);
}

lg_tensor *lg_binary_cross_entropy_with_logits(lg_ctx *ctx, lg_tensor *input, lg_tensor *target,
                                               const lg_bce_logits_opts *opts)
{
    const char *outer = lgL_enter(ctx, "lg_binary_cross_entropy_with_logits");
    return lgL_leave(ctx, outer,
                     ctx ? binary_cross_entropy_with_logits_body(ctx, input, target, opts) : NULL);
}

static lg_tensor *multilabel_soft_margin_loss_body(lg_ctx *ctx, lg_tensor *input, lg_tensor *target,
                                                   const lg_mlsm_opts *opts)
{
    static const char who[] = "lg_multilabel_soft_margin_loss";
    lg_mlsm_opts o;
    if (!lgC_opts(ctx, who, &lgL_desc_lg_mlsm_opts, opts, &o))
        return NULL;
    lg_tensor *w = o.weight;
    if (!lgL_pair(ctx, input, target, who) || !lgL_reduction(ctx, o.reduction, false, who) ||
        !lgL_broadcasts_into(ctx, w, input, who, "weight"))
        return NULL;
    if (lg_tensor_ndim(input) == 0)
        return lgC_error(ctx, LG_ERR_SHAPE, "%s: input is 0-d, expected a class axis", who);
    if (!w) { /* the class mean of the fused BCE with logits: one pass for MEAN and SUM */
        int64_t C = lg_tensor_shape(input)[lg_tensor_ndim(input) - 1];
        if (o.reduction == LG_REDUCTION_NONE)
            return lg_mean(ctx, lgL_pointwise(ctx, LGL_PW_mlsm, input, target, 0, o.reduction, who),
                           1, (int[]){ -1 }, false);
        lg_tensor *l = lgL_pointwise(ctx, LGL_PW_mlsm, input, target, 0, o.reduction, who);
        return o.reduction == LG_REDUCTION_SUM ? lg_mul_scalar(ctx, l, 1.0 / (double)C) : l;
    }
    lg_tensor *pos = lg_mul(ctx, target, lg_log_sigmoid(ctx, input));
    lg_tensor *neg = lg_mul(ctx, lg_add_scalar(ctx, lg_neg(ctx, target), 1),
                            lg_log_sigmoid(ctx, lg_neg(ctx, input)));
    lg_tensor *e = lg_neg(ctx, lg_add(ctx, pos, neg));
    if (w)
        e = lg_mul(ctx, e, w);
    lg_tensor *l = lg_mean(ctx, e, 1, (int[]){ -1 }, false);
    return lgL_reduce(ctx, l, o.reduction);
}

lg_tensor *lg_multilabel_soft_margin_loss(lg_ctx *ctx, lg_tensor *input, lg_tensor *target,
                                          const lg_mlsm_opts *opts)
{
    const char *outer = lgL_enter(ctx, "lg_multilabel_soft_margin_loss");
    return lgL_leave(ctx, outer,
                     ctx ? multilabel_soft_margin_loss_body(ctx, input, target, opts) : NULL);
}
