/* index.c: index_select, gather and one_hot.
 *
 *   index_select(x, axis, idx): y[.., j, ..] = x[.., idx[j], ..];
 *       dx[.., idx[j], ..] += g[.., j, ..]  (repeated indices add up)
 *   gather(x, axis, idx): y[i] = x[i with coordinate `axis` = idx[i]];
 *       dx scatter-adds g the same way.
 *   one_hot(labels, C): y[..., c] = (labels[...] == c); no gradient.
 * Indices are int64 and checked against their range before anything is
 * computed; negative indices are errors.
 */
#include "autograd.h"

#include <string.h>

static bool check_index(lg_ctx *ctx, const lg_tensor *idx, int64_t n, const char *who,
                        const char *what)
{
    const int64_t *v = LGT_I(idx);
    for (int64_t i = 0; i < idx->numel; i++)
        if (v[i] < 0 || v[i] >= n) {
            lgC_error(ctx, LG_ERR_INDEX,
                      "%s: index[%lld] = %lld is out of range for %s of size %lld", who,
                      (long long)i, (long long)v[i], what, (long long)n);
            return false;
        }
    return true;
}

static bool int_index(lg_ctx *ctx, const lg_tensor *idx, const char *who)
{
    if (!lgT_ok(ctx, idx, who, "index"))
        return false;
    if (idx->dtype != LG_I64) {
        lgC_error(ctx, LG_ERR_DTYPE, "%s: index has dtype %s, expected int64", who,
                  lgT_dtype_name((lg_dtype)idx->dtype));
        return false;
    }
    return true;
}

static void outer_inner(const lg_tensor *x, int ax, int64_t *outer, int64_t *inner)
{
    *outer = *inner = 1;
    for (int d = 0; d < ax; d++)
        *outer *= x->shape[d];
    for (int d = ax + 1; d < x->ndim; d++)
        *inner *= x->shape[d];
}

/* select: y <- x rows by idx; otherwise x rows += y rows (backward). */
static void select_move(lg_tensor *x, lg_tensor *y, int ax, const lg_tensor *idx, bool take)
{
    if (y->numel == 0) /* nothing moves; the outer blocks may still number 2^60 */
        return;
    int64_t outer, inner, n = x->shape[ax], m = idx->numel;
    outer_inner(x, ax, &outer, &inner);
    size_t es = lgT_dtype_size((lg_dtype)x->dtype);
    const int64_t *iv = LGT_I(idx);
    for (int64_t o = 0; o < outer; o++)
        for (int64_t j = 0; j < m; j++) {
            int64_t xi = (o * n + iv[j]) * inner, yi = (o * m + j) * inner;
            if (take)
                memcpy((char *)y->data + (size_t)yi * es, (char *)x->data + (size_t)xi * es,
                       (size_t)inner * es);
            else
                for (int64_t k = 0; k < inner; k++)
                    lgT_set(x, xi + k, lgT_get(x, xi + k) + lgT_get(y, yi + k));
        }
}

lg_tensor *lg_index_select(lg_ctx *ctx, lg_tensor *x, int axis, lg_tensor *index)
{
    static const char who[] = "lg_index_select";
    int ax;
    if (!ctx || !lgT_ok(ctx, x, who, "x") || !int_index(ctx, index, who))
        return NULL;
    if (x->ndim == 0)
        return lgC_error(ctx, LG_ERR_SHAPE, "%s: x is 0-d, expected at least 1 dim", who);
    if (!lgT_axis(ctx, axis, x->ndim, who, &ax))
        return NULL;
    if (index->ndim > 1)
        return lgC_error(ctx, LG_ERR_SHAPE, "%s: index has %d dims, expected 1", who, index->ndim);
    if (!check_index(ctx, index, x->shape[ax], who, "the axis"))
        return NULL;
    int64_t shape[LG_MAX_DIMS];
    memcpy(shape, x->shape, sizeof shape);
    shape[ax] = index->numel;
    lg_tensor *y = lgT_new(ctx, (lg_dtype)x->dtype, x->ndim, shape, who);
    if (!y)
        return NULL;
    select_move(x, y, ax, index, true);
    y->attr.axis.axis = ax;
    y->saved = index;
    return lgA_record(ctx, LGA_OP_index_select, y, 1, &x);
}

lg_status lgA_bw_index_select(lg_ctx *ctx, lg_tensor *y)
{
    lg_tensor *x = y->in[0];
    lg_tensor *dx = lgT_zeros_like(ctx, x, "lg_backward");
    if (!dx)
        return ctx->status;
    select_move(dx, y->grad, y->attr.axis.axis, y->saved, false);
    return lgA_accum(ctx, x, dx);
}

/* Offset in x of index element i (row-major over idx's shape). */
static int64_t gather_off(const lg_tensor *x, const lg_tensor *idx, int ax, int64_t i)
{
    int64_t off = 0, stride = 1;
    for (int d = x->ndim - 1; d >= 0; d--) {
        int64_t c = i % idx->shape[d];
        i /= idx->shape[d];
        off += (d == ax ? 0 : c) * stride;
        stride *= x->shape[d];
    }
    return off;
}

static int64_t axis_stride(const lg_tensor *x, int ax)
{
    int64_t s = 1;
    for (int d = ax + 1; d < x->ndim; d++)
        s *= x->shape[d];
    return s;
}

lg_tensor *lg_gather(lg_ctx *ctx, lg_tensor *x, int axis, lg_tensor *index)
{
    static const char who[] = "lg_gather";
    int ax;
    if (!ctx || !lgT_ok(ctx, x, who, "x") || !int_index(ctx, index, who))
        return NULL;
    if (x->ndim == 0)
        return lgC_error(ctx, LG_ERR_SHAPE, "%s: x is 0-d, expected at least 1 dim", who);
    if (!lgT_axis(ctx, axis, x->ndim, who, &ax))
        return NULL;
    bool fits = index->ndim == x->ndim;
    for (int d = 0; fits && d < x->ndim; d++)
        fits = d == ax || index->shape[d] <= x->shape[d];
    if (!fits) {
        char a[160], b[160];
        lgT_shape_str(x, a, sizeof a);
        lgT_shape_str(index, b, sizeof b);
        return lgC_error(
            ctx, LG_ERR_SHAPE,
            "%s: index %s must have x's %d dims and be no larger than x %s off axis %d", who, b,
            x->ndim, a, ax);
    }
    if (!check_index(ctx, index, x->shape[ax], who, "the axis"))
        return NULL;
    lg_tensor *y = lgT_new(ctx, (lg_dtype)x->dtype, index->ndim, index->shape, who);
    if (!y)
        return NULL;
    int64_t st = axis_stride(x, ax);
    const int64_t *iv = LGT_I(index);
    for (int64_t i = 0; i < y->numel; i++)
        lgT_set(y, i, lgT_get(x, gather_off(x, index, ax, i) + iv[i] * st));
    y->attr.axis.axis = ax;
    y->saved = index;
    return lgA_record(ctx, LGA_OP_gather, y, 1, &x);
}

lg_status lgA_bw_gather(lg_ctx *ctx, lg_tensor *y)
{
    lg_tensor *x = y->in[0], *index = y->saved;
    lg_tensor *dx = lgT_zeros_like(ctx, x, "lg_backward");
    if (!dx)
        return ctx->status;
    int ax = y->attr.axis.axis;
    int64_t st = axis_stride(x, ax);
    const int64_t *iv = LGT_I(index);
    for (int64_t i = 0; i < y->numel; i++) {
        int64_t o = gather_off(x, index, ax, i) + iv[i] * st;
        lgT_set(dx, o, lgT_get(dx, o) + lgT_get(y->grad, i));
    }
    return lgA_accum(ctx, x, dx);
}

lg_tensor *lg_one_hot(lg_ctx *ctx, lg_tensor *labels, int64_t num_classes, lg_dtype dt)
{
    static const char who[] = "lg_one_hot";
    if (!ctx || !lgT_ok(ctx, labels, who, "labels"))
        return NULL;
    if (labels->dtype != LG_I64)
        return lgC_error(ctx, LG_ERR_DTYPE, "%s: labels has dtype %s, expected int64", who,
                         lgT_dtype_name((lg_dtype)labels->dtype));
    if (labels->ndim >= LG_MAX_DIMS)
        return lgC_error(ctx, LG_ERR_SHAPE, "%s: labels has %d dims, at most %d allowed", who,
                         labels->ndim, LG_MAX_DIMS - 1);
    if (num_classes == -1) { /* as PyTorch: one more than the largest label */
        num_classes = 0;
        for (int64_t i = 0; i < labels->numel; i++) {
            int64_t v = LGT_I(labels)[i];
            if (v == INT64_MAX) /* v + 1 would overflow */
                return lgC_error(ctx, LG_ERR_INDEX,
                                 "%s: labels[%lld] = %lld leaves no num_classes to infer (it "
                                 "would be INT64_MAX + 1)",
                                 who, (long long)i, (long long)v);
            if (v >= num_classes)
                num_classes = v + 1;
        }
    }
    if (num_classes < 0)
        return lgC_error(ctx, LG_ERR_VALUE, "%s: num_classes = %lld, expected >= 0 or -1", who,
                         (long long)num_classes);
    if (!check_index(ctx, labels, num_classes, who, "num_classes"))
        return NULL;
    int64_t shape[LG_MAX_DIMS];
    memcpy(shape, labels->shape, sizeof shape);
    shape[labels->ndim] = num_classes;
    lg_tensor *y = lgT_new(ctx, dt, labels->ndim + 1, shape, who);
    if (!y)
        return NULL;
    lgT_fill(y, 0.0);
    for (int64_t i = 0; i < labels->numel; i++)
        lgT_set(y, i * num_classes + LGT_I(labels)[i], 1.0);
    return lgA_record(ctx, LGA_OP_one_hot, y, 0, NULL);
}

lg_status lgA_bw_one_hot(lg_ctx *ctx, lg_tensor *y)
{
    (void)ctx, (void)y; /* never on the tape: labels carry no gradient */
    return LG_OK;
}

/* Taped backwards ------------------------------------------------------- */

lg_status lgA_tbw_index_select(lg_ctx *ctx, lg_tensor *y, lg_tensor *g)
{
    if (!lgA_tneeds(y, 0))
        return LG_OK;
    return lgA_taccum(ctx, y->in[0],
                      lgA_index_adjoint(ctx, g, y->in[0], y->attr.axis.axis, y->saved));
}

lg_status lgA_tbw_gather(lg_ctx *ctx, lg_tensor *y, lg_tensor *g)
{
    if (!lgA_tneeds(y, 0))
        return LG_OK;
    return lgA_taccum(ctx, y->in[0],
                      lgA_gather_adjoint(ctx, g, y->in[0], y->attr.axis.axis, y->saved));
}

lg_status lgA_tbw_one_hot(lg_ctx *ctx, lg_tensor *y, lg_tensor *g)
{
    (void)ctx, (void)y, (void)g; /* no gradient to the labels */
    return LG_OK;
}

/* index_adjoint: y = zeros of x's shape, y[index[j]] += g[j] along axis
 * (index_select's gradient as an op); its gradient is index_select of gy. */
lg_tensor *lgA_index_adjoint(lg_ctx *ctx, lg_tensor *g, const lg_tensor *x, int axis,
                             lg_tensor *index)
{
    if (!g)
        return NULL;
    lg_tensor *y = lgT_zeros_like(ctx, x, "lg_grad");
    if (!y)
        return NULL;
    select_move(y, g, axis, index, false);
    y->attr.axis.axis = axis;
    y->saved = index;
    return lgA_record(ctx, LGA_OP_index_adjoint, y, 1, &g);
}

lg_status lgA_bw_index_adjoint(lg_ctx *ctx, lg_tensor *y)
{
    lg_tensor *g = y->in[0];
    lg_tensor *dg = lgT_new_like(ctx, g, "lg_backward");
    if (!dg)
        return ctx->status;
    select_move(y->grad, dg, y->attr.axis.axis, y->saved, true);
    return lgA_accum(ctx, g, dg);
}

lg_status lgA_tbw_index_adjoint(lg_ctx *ctx, lg_tensor *y, lg_tensor *gy)
{
    if (!lgA_tneeds(y, 0))
        return LG_OK;
    return lgA_taccum(ctx, y->in[0], lg_index_select(ctx, gy, y->attr.axis.axis, y->saved));
}

/* gather_adjoint: y = zeros of x's shape with g added at gather's
 * positions (gather's gradient as an op); its gradient is gather of gy. */
lg_tensor *lgA_gather_adjoint(lg_ctx *ctx, lg_tensor *g, const lg_tensor *x, int axis,
                              lg_tensor *index)
{
    if (!g)
        return NULL;
    lg_tensor *y = lgT_zeros_like(ctx, x, "lg_grad");
    if (!y)
        return NULL;
    int64_t st = axis_stride(x, axis);
    const int64_t *iv = LGT_I(index);
    for (int64_t i = 0; i < g->numel; i++) {
        int64_t o = gather_off(x, index, axis, i) + iv[i] * st;
        lgT_set(y, o, lgT_get(y, o) + lgT_get(g, i));
    }
    y->attr.axis.axis = axis;
    y->saved = index;
    return lgA_record(ctx, LGA_OP_gather_adjoint, y, 1, &g);
}

lg_status lgA_bw_gather_adjoint(lg_ctx *ctx, lg_tensor *y)
{
    lg_tensor *g = y->in[0], *index = y->saved;
    lg_tensor *dg = lgT_new_like(ctx, g, "lg_backward");
    if (!dg)
        return ctx->status;
    int ax = y->attr.axis.axis;
    int64_t st = axis_stride(y, ax);
    const int64_t *iv = LGT_I(index);
    for (int64_t i = 0; i < g->numel; i++)
        lgT_set(dg, i, lgT_get(y->grad, gather_off(y, index, ax, i) + iv[i] * st));
    return lgA_accum(ctx, g, dg);
}

lg_status lgA_tbw_gather_adjoint(lg_ctx *ctx, lg_tensor *y, lg_tensor *gy)
{
    if (!lgA_tneeds(y, 0))
        return LG_OK;
    return lgA_taccum(ctx, y->in[0], lg_gather(ctx, gy, y->attr.axis.axis, y->saved));
}
