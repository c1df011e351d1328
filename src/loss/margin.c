/* margin.c: hinge_embedding_loss and triplet_margin_loss (composites).
 *
 *   hinge:   l = x where y == 1, max(0, margin - x) where y == -1
 *   triplet: l = max(0, margin + d(a, p) - d(a, n)),  d(u, v) = ||u - v + eps||_p
 *            (swap: d(a, n) <- min(d(a, n), d(p, n)))
 * Hinges use clamp, whose gradient passes at the bound: at the kink the
 * active branch's gradient flows, as PyTorch's clamp_min.
 */
#include "loss.h"

#include <math.h>
#include <string.h>

lg_tensor *lg_hinge_embedding_loss(lg_ctx *ctx, lg_tensor *input, lg_tensor *target,
                                   const lg_hinge_opts *o)
{
    static const char who[] = "lg_hinge_embedding_loss";
    lg_reduction r = o ? o->reduction : LG_REDUCTION_MEAN;
    double margin = lgL_optd(o ? &o->margin : NULL, 1.0);
    if (!ctx || !lgL_float(ctx, input, who, "input") || !lgL_reduction(ctx, r, false, who))
        return NULL;
    /* The target only selects a branch: int64 labels are accepted as well. */
    if (target && lg_tensor_check(ctx, target) == LG_OK && lg_tensor_dtype(target) == LG_I64) {
        char a[160], b[160];
        lgL_shape_str(input, a, sizeof a);
        lgL_shape_str(target, b, sizeof b);
        if (strcmp(a, b))
            return lgC_error(ctx, LG_ERR_SHAPE,
                             "%s: input has shape %s but target has shape %s, expected the same",
                             who, a, b);
    } else if (!lgL_pair(ctx, input, target, who)) {
        return NULL;
    }
    int64_t n = lg_tensor_numel(target);
    lg_dtype dt = lg_tensor_dtype(target);
    for (int64_t i = 0; i < n; i++) {
        void *tv = lg_tensor_data(target);
        double v = dt == LG_F32 ? ((float *)tv)[i]
                                : (dt == LG_F64 ? ((double *)tv)[i] : (double)((int64_t *)tv)[i]);
        if (v != 1 && v != -1)
            return lgC_error(ctx, LG_ERR_VALUE, "%s: target[%lld] = %g, expected 1 or -1", who,
                             (long long)i, v);
    }
    lg_tensor *pos = lg_eq(ctx, target, lg_scalar(ctx, dt, 1));
    lg_tensor *hinge = lg_clamp(ctx, lg_add_scalar(ctx, lg_neg(ctx, input), margin), 0, INFINITY);
    return lgL_reduce(ctx, lg_where(ctx, pos, input, hinge), r);
}

lg_tensor *lg_triplet_margin_loss(lg_ctx *ctx, lg_tensor *anchor, lg_tensor *positive,
                                  lg_tensor *negative, const lg_triplet_opts *o)
{
    static const char who[] = "lg_triplet_margin_loss";
    lg_reduction r = o ? o->reduction : LG_REDUCTION_MEAN;
    double margin = lgL_optd(o ? &o->margin : NULL, 1.0);
    double p = lgL_optd(o ? &o->p : NULL, 2.0);
    double eps = lgL_optd(o ? &o->eps : NULL, 1e-6);
    if (!ctx || !lgL_float(ctx, anchor, who, "anchor") ||
        !lgL_float(ctx, positive, who, "positive") || !lgL_float(ctx, negative, who, "negative") ||
        !lgL_reduction(ctx, r, false, who))
        return NULL;
    int na = lg_tensor_ndim(anchor), np = lg_tensor_ndim(positive), nn = lg_tensor_ndim(negative);
    if (na != np || na != nn || na == 0)
        return lgC_error(ctx, LG_ERR_SHAPE,
                         "%s: anchor, positive and negative have %d, %d and %d dims, expected the "
                         "same number (at least 1)",
                         who, na, np, nn);
    lg_dtype dt = lg_tensor_dtype(anchor);
    if (lg_tensor_dtype(positive) != dt || lg_tensor_dtype(negative) != dt)
        return lgC_error(ctx, LG_ERR_DTYPE, "%s: anchor, positive and negative differ in dtype",
                         who);
    for (int d = 0; d < na; d++) {
        int64_t a = lg_tensor_shape(anchor)[d], b = lg_tensor_shape(positive)[d],
                c = lg_tensor_shape(negative)[d];
        int64_t m = a > b ? (a > c ? a : c) : (b > c ? b : c);
        bool last = d == na - 1;
        if ((last && (a != b || a != c)) || (a != m && a != 1) || (b != m && b != 1) ||
            (c != m && c != 1))
            return lgC_error(ctx, LG_ERR_SHAPE, "%s: sizes %lld, %lld and %lld at dim %d do not %s",
                             who, (long long)a, (long long)b, (long long)c, d,
                             last ? "match (the feature dim must be equal)" : "broadcast");
    }
    if (isnan(p) || isnan(eps))
        return lgC_error(ctx, LG_ERR_VALUE, "%s: p and eps must be numbers", who);
    lg_tensor *d_ap = lg_pairwise_distance(ctx, anchor, positive, p, eps, false);
    lg_tensor *d_an = lg_pairwise_distance(ctx, anchor, negative, p, eps, false);
    if (o && o->swap)
        d_an = lg_minimum(ctx, d_an, lg_pairwise_distance(ctx, positive, negative, p, eps, false));
    lg_tensor *l = lg_clamp(ctx, lg_add_scalar(ctx, lg_sub(ctx, d_ap, d_an), margin), 0, INFINITY);
    return lgL_reduce(ctx, l, r);
}
