/* margin.c: the margin losses on +-1 targets: hinge_embedding_loss,
 * soft_margin_loss (kinds of losses.def (LGL_POINTWISE rows), fused), margin_ranking_loss
 * and cosine_embedding_loss (composites).
 *
 *   hinge:           l = x where y == 1, max(0, margin - x) where y == -1
 *   soft margin:     log(1 + exp(-y x)) = -log_sigmoid(y x)
 *   margin ranking:  max(0, -y (x1 - x2) + margin)
 *   cosine:          1 - cos(x1, x2) where y == 1, max(0, cos - margin) where y == -1
 * Hinges use clamp, whose gradient passes at the bound: at the kink the
 * active branch's gradient flows, as PyTorch's clamp_min.
 */
#include "fused.h"
#include "loss.h"

#include <math.h>
#include <string.h>

/* The composites of the fused kinds, their oracles. */
lg_tensor *lgL_composite_hinge(lg_ctx *ctx, const lgL_fused *f)
{
    lg_tensor *x = f->in[0], *y = f->in[1];
    lg_dtype dt = lg_tensor_dtype(x);
    lg_tensor *h = lg_clamp(ctx, lg_add_scalar(ctx, lg_neg(ctx, x), f->a[0]), 0, INFINITY);
    return lgL_composite_reduce(ctx, f, lg_where(ctx, lg_eq(ctx, y, lg_scalar(ctx, dt, 1)), x, h));
}

lg_tensor *lgL_composite_soft_margin(lg_ctx *ctx, const lgL_fused *f)
{
    lg_tensor *t = lg_mul(ctx, f->in[1], f->in[0]);
    return lgL_composite_reduce(ctx, f, lg_neg(ctx, lg_log_sigmoid(ctx, t)));
}

static lg_tensor *hinge_embedding_loss_body(lg_ctx *ctx, lg_tensor *input, lg_tensor *target,
                                            const lg_hinge_opts *opts)
{
    static const char who[] = "lg_hinge_embedding_loss";
    lg_hinge_opts o;
    if (!lgC_opts(ctx, who, &lgL_desc_lg_hinge_opts, opts, &o))
        return NULL;
    double margin = o.margin;
    if (!lgT_ok_float(ctx, input, who, "input") || !lgL_reduction(ctx, o.reduction, false, who))
        return NULL;
    /* The target only selects a branch: int64 labels are accepted as well. */
    if (target && lg_tensor_check(ctx, target) == LG_OK && lg_tensor_dtype(target) == LG_I64) {
        char a[160], b[160];
        lgT_shape_str(input, a, sizeof a);
        lgT_shape_str(target, b, sizeof b);
        if (strcmp(a, b))
            return lgC_error(ctx, LG_ERR_SHAPE,
                             "%s: input has shape %s but target has shape %s, expected the same",
                             who, a, b);
    } else if (!lgL_pair(ctx, input, target, who)) {
        return NULL;
    }
    int64_t n = lg_tensor_numel(target);
    lg_dtype dt = lg_tensor_dtype(target);
    bool bad = lgL_any_bad(ctx, target, 0, 0, true);
    for (int64_t i = 0; bad && i < n; i++) { /* the first offender, for the message */
        double v = lgT_get(target, i);
        if (v != 1 && v != -1)
            return lgC_error(ctx, LG_ERR_VALUE, "%s: target[%lld] = %g, expected 1 or -1", who,
                             (long long)i, v);
    }
    if (dt == LG_I64) { /* int64 labels: the same values in input's dtype */
        lg_tensor *y =
            lg_zeros(ctx, lg_tensor_dtype(input), lg_tensor_ndim(target), lg_tensor_shape(target));
        if (!y)
            return NULL;
        for (int64_t i = 0; i < n; i++)
            if (lg_tensor_dtype(y) == LG_F32)
                ((float *)lg_tensor_data(y))[i] = (float)lgT_get(target, i);
            else
                ((double *)lg_tensor_data(y))[i] = lgT_get(target, i);
        target = y;
    }
    return lgL_pointwise(ctx, LGL_PW_hinge, input, target, margin, o.reduction, who);
}

lg_tensor *lg_hinge_embedding_loss(lg_ctx *ctx, lg_tensor *input, lg_tensor *target,
                                   const lg_hinge_opts *opts)
{
    const char *outer = lgL_enter(ctx, "lg_hinge_embedding_loss");
    return lgL_leave(ctx, outer, ctx ? hinge_embedding_loss_body(ctx, input, target, opts) : NULL);
}

/* The target of a pair loss: [N] for [N, D] inputs (0-d for [D]), of
 * input's float dtype (or int64 when ints_ok). */
static bool pair_target(lg_ctx *ctx, lg_tensor *x1, lg_tensor *x2, lg_tensor *y, bool ints_ok,
                        const char *who)
{
    if (!lgT_ok_float(ctx, x1, who, "input1") || !lgT_ok_float(ctx, x2, who, "input2"))
        return false;
    if (!y) {
        lgC_error(ctx, LG_ERR_NULL, "%s: target is NULL", who);
        return false;
    }
    if (lg_tensor_check(ctx, y) != LG_OK)
        return false;
    lg_dtype dt = lg_tensor_dtype(x1);
    int n1 = lg_tensor_ndim(x1), n2 = lg_tensor_ndim(x2);
    const int64_t *s1 = lg_tensor_shape(x1), *s2 = lg_tensor_shape(x2);
    if (lg_tensor_dtype(x2) != dt ||
        (lg_tensor_dtype(y) != dt && !(ints_ok && lg_tensor_dtype(y) == LG_I64))) {
        lgC_error(ctx, LG_ERR_DTYPE, "%s: input1 is %s, input2 %s and target %s, expected %s", who,
                  lgT_dtype_name(dt), lgT_dtype_name(lg_tensor_dtype(x2)),
                  lgT_dtype_name(lg_tensor_dtype(y)),
                  ints_ok ? "one float dtype (int64 allowed for target)" : "one float dtype");
        return false;
    }
    int64_t N = n1 == 2 ? (s1[0] > s2[0] ? s1[0] : s2[0]) : 1;
    bool ok = n1 == n2 && n1 >= 1 && n1 <= 2 && s1[n1 - 1] == s2[n2 - 1] &&
              (n1 == 1 || ((s1[0] == N || s1[0] == 1) && (s2[0] == N || s2[0] == 1)));
    if (!ok) {
        char a[160], b[160];
        lgT_shape_str(x1, a, sizeof a);
        lgT_shape_str(x2, b, sizeof b);
        lgC_error(ctx, LG_ERR_SHAPE,
                  "%s: input1 %s and input2 %s, expected [N, D] or [D] with equal D (a batch of "
                  "1 broadcasts)",
                  who, a, b);
        return false;
    }
    int yn = lg_tensor_ndim(y);
    if (n1 == 1 ? yn != 0 : (yn != 1 || lg_tensor_shape(y)[0] != N)) {
        char a[160];
        lgT_shape_str(y, a, sizeof a);
        lgC_error(ctx, LG_ERR_SHAPE, "%s: target has shape %s, expected %s", who, a,
                  n1 == 1 ? "0-d for [D] inputs" : "[N] for [N, D] inputs");
        return false;
    }
    return true;
}

static lg_tensor *cosine_embedding_loss_body(lg_ctx *ctx, lg_tensor *input1, lg_tensor *input2,
                                             lg_tensor *target, const lg_margin_opts *opts)
{
    static const char who[] = "lg_cosine_embedding_loss";
    lg_margin_opts o;
    if (!lgL_opts_margin(ctx, who, opts, &o))
        return NULL;
    double margin = o.margin;
    if (!pair_target(ctx, input1, input2, target, true, who) ||
        !lgL_reduction(ctx, o.reduction, false, who))
        return NULL;
    /* PyTorch's order of operations, 1e-12 in each squared norm */
    const int last[] = { -1 };
    lg_tensor *dot = lg_sum(ctx, lg_mul(ctx, input1, input2), 1, last, false);
    lg_tensor *m1 =
        lg_add_scalar(ctx, lg_sum(ctx, lg_mul(ctx, input1, input1), 1, last, false), 1e-12);
    lg_tensor *m2 =
        lg_add_scalar(ctx, lg_sum(ctx, lg_mul(ctx, input2, input2), 1, last, false), 1e-12);
    lg_tensor *cos = lg_div(ctx, dot, lg_sqrt(ctx, lg_mul(ctx, m1, m2)));
    lg_dtype dt = lg_tensor_dtype(input1), yt = lg_tensor_dtype(target);
    lg_tensor *zero = lg_scalar(ctx, dt, 0);
    lg_tensor *pos = lg_where(ctx, lg_eq(ctx, target, lg_scalar(ctx, yt, 1)),
                              lg_add_scalar(ctx, lg_neg(ctx, cos), 1), zero);
    lg_tensor *neg = lg_where(ctx, lg_eq(ctx, target, lg_scalar(ctx, yt, -1)),
                              lg_clamp(ctx, lg_add_scalar(ctx, cos, -margin), 0, INFINITY), zero);
    return lgL_reduce(ctx, lg_add(ctx, pos, neg), o.reduction);
}

lg_tensor *lg_cosine_embedding_loss(lg_ctx *ctx, lg_tensor *input1, lg_tensor *input2,
                                    lg_tensor *target, const lg_margin_opts *opts)
{
    const char *outer = lgL_enter(ctx, "lg_cosine_embedding_loss");
    return lgL_leave(ctx, outer,
                     ctx ? cosine_embedding_loss_body(ctx, input1, input2, target, opts) : NULL);
}

static lg_tensor *margin_ranking_loss_body(lg_ctx *ctx, lg_tensor *input1, lg_tensor *input2,
                                           lg_tensor *target, const lg_margin_opts *opts)
{
    static const char who[] = "lg_margin_ranking_loss";
    lg_margin_opts o;
    if (!lgL_opts_margin(ctx, who, opts, &o))
        return NULL;
    double margin = o.margin;
    if (!lgT_ok_float(ctx, input1, who, "input1") || !lgT_ok_float(ctx, input2, who, "input2") ||
        !lgT_ok_float(ctx, target, who, "target") || !lgL_reduction(ctx, o.reduction, false, who))
        return NULL;
    lg_dtype dt = lg_tensor_dtype(input1);
    if (lg_tensor_dtype(input2) != dt || lg_tensor_dtype(target) != dt ||
        !lgT_same_shape(input1, input2) || !lgT_same_shape(input1, target)) {
        char a[160], b[160], c[160];
        lgT_shape_str(input1, a, sizeof a);
        lgT_shape_str(input2, b, sizeof b);
        lgT_shape_str(target, c, sizeof c);
        return lgC_error(ctx, LG_ERR_SHAPE,
                         "%s: input1 is %s %s, input2 %s %s and target %s %s, expected one shape "
                         "and dtype (no broadcasting)",
                         who, lgT_dtype_name(dt), a, lgT_dtype_name(lg_tensor_dtype(input2)), b,
                         lgT_dtype_name(lg_tensor_dtype(target)), c);
    }
    lg_tensor *v = lg_mul(ctx, lg_neg(ctx, target), lg_sub(ctx, input1, input2));
    return lgL_reduce(ctx, lg_clamp(ctx, lg_add_scalar(ctx, v, margin), 0, INFINITY), o.reduction);
}

lg_tensor *lg_margin_ranking_loss(lg_ctx *ctx, lg_tensor *input1, lg_tensor *input2,
                                  lg_tensor *target, const lg_margin_opts *opts)
{
    const char *outer = lgL_enter(ctx, "lg_margin_ranking_loss");
    return lgL_leave(ctx, outer,
                     ctx ? margin_ranking_loss_body(ctx, input1, input2, target, opts) : NULL);
}

static lg_tensor *soft_margin_loss_body(lg_ctx *ctx, lg_tensor *input, lg_tensor *target,
                                        const lg_loss_opts *opts)
{
    static const char who[] = "lg_soft_margin_loss";
    lg_loss_opts o;
    if (!lgL_opts_loss(ctx, who, opts, &o))
        return NULL;
    if (!lgL_pair(ctx, input, target, who) || !lgL_reduction(ctx, o.reduction, false, who))
        return NULL;
    return lgL_pointwise(ctx, LGL_PW_soft_margin, input, target, 0, o.reduction, who);
}

lg_tensor *lg_soft_margin_loss(lg_ctx *ctx, lg_tensor *input, lg_tensor *target,
                               const lg_loss_opts *opts)
{
    const char *outer = lgL_enter(ctx, "lg_soft_margin_loss");
    return lgL_leave(ctx, outer, ctx ? soft_margin_loss_body(ctx, input, target, opts) : NULL);
}
