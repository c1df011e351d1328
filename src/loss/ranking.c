/* ranking.c: margin_ranking_loss, soft_margin_loss, multi_margin_loss and
 * multilabel_margin_loss (composites).
 *
 *   margin ranking:   max(0, -y (x1 - x2) + margin)
 *   soft margin:      log(1 + exp(-y x)) = -log_sigmoid(y x), the fused
 *                     primitive of pointwise.c
 *   multi margin:     (1/C) sum_{j != y} w[y] max(0, margin - x_y + x_j)^p
 *   multilabel margin:(1/C) sum_{j in P} sum_{k not in P} max(0, 1 - x_j + x_k)
 * The class hinges of the last two keep a term only where it is strictly
 * positive (a `where` on z > 0): the gradient is 0 at z = 0, and a NaN
 * term is dropped, as PyTorch's loops do.
 */
#include "loss.h"

#include <math.h>
#include <string.h>

lg_tensor *lg_margin_ranking_loss(lg_ctx *ctx, lg_tensor *input1, lg_tensor *input2,
                                  lg_tensor *target, const lg_margin_opts *o)
{
    static const char who[] = "lg_margin_ranking_loss";
    lg_reduction r = o ? o->reduction : LG_REDUCTION_MEAN;
    double margin = o ? o->margin : 0;
    if (!ctx || !lgL_float(ctx, input1, who, "input1") || !lgL_float(ctx, input2, who, "input2") ||
        !lgL_float(ctx, target, who, "target") || !lgL_reduction(ctx, r, false, who))
        return NULL;
    lg_dtype dt = lg_tensor_dtype(input1);
    if (lg_tensor_dtype(input2) != dt || lg_tensor_dtype(target) != dt ||
        !lgL_same_shape(input1, input2) || !lgL_same_shape(input1, target)) {
        char a[160], b[160], c[160];
        lgL_shape_str(input1, a, sizeof a);
        lgL_shape_str(input2, b, sizeof b);
        lgL_shape_str(target, c, sizeof c);
        return lgC_error(ctx, LG_ERR_SHAPE,
                         "%s: input1 is %s %s, input2 %s %s and target %s %s, expected one shape "
                         "and dtype (no broadcasting)",
                         who, lgL_dtype_name(dt), a, lgL_dtype_name(lg_tensor_dtype(input2)), b,
                         lgL_dtype_name(lg_tensor_dtype(target)), c);
    }
    lg_tensor *v = lg_mul(ctx, lg_neg(ctx, target), lg_sub(ctx, input1, input2));
    return lgL_reduce(ctx, lg_clamp(ctx, lg_add_scalar(ctx, v, margin), 0, INFINITY), r);
}

lg_tensor *lg_soft_margin_loss(lg_ctx *ctx, lg_tensor *input, lg_tensor *target,
                               const lg_loss_opts *o)
{
    static const char who[] = "lg_soft_margin_loss";
    lg_reduction r = o ? o->reduction : LG_REDUCTION_MEAN;
    if (!ctx || !lgL_pair(ctx, input, target, who) || !lgL_reduction(ctx, r, false, who))
        return NULL;
    return lgL_pointwise(ctx, LGL_PW_SOFT_MARGIN, input, target, 0, r, who);
}

/* input [N, C] or [C] against an int64 class-index target [N] or 0-d/[1];
 * gives C and the input as [N, C]. */
static lg_tensor *class_rows(lg_ctx *ctx, lg_tensor *x, lg_tensor *t, const char *who,
                             int64_t *C)
{
    int xn = lg_tensor_ndim(x), tn = lg_tensor_ndim(t);
    const int64_t *xs = lg_tensor_shape(x), *ts = lg_tensor_shape(t);
    if (xn < 1 || xn > 2 || xs[xn - 1] == 0) {
        char a[160];
        lgL_shape_str(x, a, sizeof a);
        return lgC_error(ctx, LG_ERR_SHAPE, "%s: input has shape %s, expected [N, C] or [C], C > 0",
                         who, a);
    }
    *C = xs[xn - 1];
    int64_t N = xn == 2 ? xs[0] : 1;
    bool ok = xn == 2 ? (tn == 1 && ts[0] == N) : (tn == 0 || (tn == 1 && ts[0] == 1));
    if (!ok) {
        char a[160], b[160];
        lgL_shape_str(x, a, sizeof a);
        lgL_shape_str(t, b, sizeof b);
        return lgC_error(ctx, LG_ERR_SHAPE,
                         "%s: target has shape %s for input %s, expected [N] for [N, C] (0-d or "
                         "[1] for [C])",
                         who, b, a);
    }
    for (int64_t i = 0; i < N; i++) {
        int64_t y = ((const int64_t *)lg_tensor_data(t))[i];
        if (y < 0 || y >= *C)
            return lgC_error(ctx, LG_ERR_INDEX, "%s: target[%lld] = %lld, expected a class in [0, %lld)",
                             who, (long long)i, (long long)y, (long long)*C);
    }
    return lg_reshape(ctx, x, 2, (int64_t[]){ N, *C });
}

lg_tensor *lg_multi_margin_loss(lg_ctx *ctx, lg_tensor *input, lg_tensor *target,
                                const lg_multi_margin_opts *o)
{
    static const char who[] = "lg_multi_margin_loss";
    lg_reduction r = o ? o->reduction : LG_REDUCTION_MEAN;
    int64_t p = lgL_opti(o ? &o->p : NULL, 1);
    double margin = lgL_optd(o ? &o->margin : NULL, 1.0);
    lg_tensor *w = o ? o->weight : NULL;
    if (!ctx || !lgL_float(ctx, input, who, "input") || !lgL_int(ctx, target, who, "target") ||
        !lgL_reduction(ctx, r, false, who))
        return NULL;
    if (p != 1 && p != 2)
        return lgC_error(ctx, LG_ERR_VALUE, "%s: p = %lld, expected 1 or 2", who, (long long)p);
    int64_t C = 0;
    lg_tensor *x = class_rows(ctx, input, target, who, &C);
    if (!x)
        return NULL;
    lg_dtype dt = lg_tensor_dtype(input);
    if (w) {
        if (!lgL_float(ctx, w, who, "weight"))
            return NULL;
        if (lg_tensor_dtype(w) != dt || lg_tensor_ndim(w) != 1 || lg_tensor_shape(w)[0] != C) {
            char a[160];
            lgL_shape_str(w, a, sizeof a);
            return lgC_error(ctx, LG_ERR_SHAPE, "%s: weight is %s %s, expected [%lld] of %s", who,
                             lgL_dtype_name(lg_tensor_dtype(w)), a, (long long)C,
                             lgL_dtype_name(dt));
        }
    }
    int64_t N = lg_tensor_shape(x)[0];
    lg_tensor *t = lg_reshape(ctx, target, 2, (int64_t[]){ N, 1 });
    lg_tensor *z = lg_add_scalar(ctx, lg_sub(ctx, x, lg_gather(ctx, x, 1, t)), margin);
    lg_tensor *other = lg_add_scalar(ctx, lg_neg(ctx, lg_one_hot(ctx, t, C, dt)), 1); /* [N,1,C] */
    other = lg_reshape(ctx, other, 2, (int64_t[]){ N, C });
    lg_tensor *keep = lg_mul(ctx, other, lg_gt(ctx, z, lg_scalar(ctx, dt, 0)));
    lg_tensor *h = lg_where(ctx, keep, p == 2 ? lg_square(ctx, z) : z, lg_scalar(ctx, dt, 0));
    lg_tensor *l = lg_mul_scalar(ctx, lg_sum(ctx, h, 1, (int[]){ 1 }, false), 1.0 / (double)C);
    if (w)
        l = lg_mul(ctx, l, lg_index_select(ctx, w, 0, lg_reshape(ctx, target, 1, &N)));
    return lgL_reduce(ctx, lg_reshape(ctx, l, lg_tensor_ndim(target), lg_tensor_shape(target)), r);
}

lg_tensor *lg_multilabel_margin_loss(lg_ctx *ctx, lg_tensor *input, lg_tensor *target,
                                     const lg_loss_opts *o)
{
    static const char who[] = "lg_multilabel_margin_loss";
    lg_reduction r = o ? o->reduction : LG_REDUCTION_MEAN;
    if (!ctx || !lgL_float(ctx, input, who, "input") || !lgL_int(ctx, target, who, "target") ||
        !lgL_reduction(ctx, r, false, who))
        return NULL;
    int xn = lg_tensor_ndim(input);
    if (xn < 1 || xn > 2 || !lgL_same_shape(input, target) ||
        lg_tensor_shape(input)[xn - 1] == 0) {
        char a[160], b[160];
        lgL_shape_str(input, a, sizeof a);
        lgL_shape_str(target, b, sizeof b);
        return lgC_error(ctx, LG_ERR_SHAPE,
                         "%s: input %s and target %s, expected one shape, [N, C] or [C] with C > 0",
                         who, a, b);
    }
    int64_t C = lg_tensor_shape(input)[xn - 1], N = xn == 2 ? lg_tensor_shape(input)[0] : 1;
    const int64_t *y = lg_tensor_data(target);
    int64_t L = 1; /* the longest label list (at least 1, for the shapes) */
    for (int64_t i = 0; i < N; i++) {
        int64_t len = C;
        for (int64_t j = 0; j < C; j++) {
            int64_t v = y[i * C + j];
            if (v < -1 || v >= C)
                return lgC_error(ctx, LG_ERR_INDEX,
                                 "%s: target[%lld] = %lld, expected a class in [0, %lld) or -1", who,
                                 (long long)(i * C + j), (long long)v, (long long)C);
            if (v == -1 && len == C)
                len = j;
        }
        L = len > L ? len : L;
    }
    /* Constant tables: the label list padded with class 0, and a mask of the
     * (label position, non-label class) pairs that count. */
    lg_dtype dt = lg_tensor_dtype(input);
    lg_tensor *idx = lg_zeros(ctx, LG_I64, 2, (int64_t[]){ N, L });
    lg_tensor *pairs = lg_zeros(ctx, dt, 3, (int64_t[]){ N, L, C });
    if (!idx || !pairs)
        return NULL;
    int64_t *ix = lg_tensor_data(idx);
    for (int64_t i = 0; i < N; i++) {
        const int64_t *row = y + i * C;
        int64_t len = 0;
        while (len < C && row[len] != -1)
            len++;
        for (int64_t k = 0; k < C; k++) {
            bool labelled = false;
            for (int64_t j = 0; j < len; j++)
                labelled = labelled || row[j] == k;
            if (labelled)
                continue;
            for (int64_t j = 0; j < len; j++) {
                int64_t at = (i * L + j) * C + k;
                if (dt == LG_F32)
                    ((float *)lg_tensor_data(pairs))[at] = 1;
                else
                    ((double *)lg_tensor_data(pairs))[at] = 1;
            }
        }
        for (int64_t j = 0; j < len; j++)
            ix[i * L + j] = row[j];
    }
    lg_tensor *x = lg_reshape(ctx, input, 2, (int64_t[]){ N, C });
    lg_tensor *xj = lg_reshape(ctx, lg_gather(ctx, x, 1, idx), 3, (int64_t[]){ N, L, 1 });
    lg_tensor *xk = lg_reshape(ctx, x, 3, (int64_t[]){ N, 1, C });
    lg_tensor *z = lg_add(ctx, lg_add_scalar(ctx, lg_neg(ctx, xj), 1), xk);
    lg_tensor *keep = lg_mul(ctx, pairs, lg_gt(ctx, z, lg_scalar(ctx, dt, 0)));
    lg_tensor *h = lg_where(ctx, keep, z, lg_scalar(ctx, dt, 0));
    lg_tensor *l = lg_mul_scalar(ctx, lg_sum(ctx, h, 2, (int[]){ 1, 2 }, false), 1.0 / (double)C);
    if (xn == 1)
        l = lg_reshape(ctx, l, 0, NULL);
    return lgL_reduce(ctx, l, r);
}
