/* reduce.c: sum, mean, max, min and logsumexp over a set of axes.
 *
 *   sum:       y = sum_R x              dx = g (expanded over R)
 *   mean:      y = sum_R x / |R|        dx = g / |R|
 *   max, min:  y = x[argmax_R]          dx = g at the first extreme, 0 elsewhere
 *   logsumexp: y = m + log sum_R exp(x - m), m = max_R x (0 if infinite)
 *                                       dx = g exp(x - y)
 * x: float, any shape; naxes 0 reduces every axis. y has x's shape without
 * R (keepdim: with size-1 axes). Accumulation is in double, in a fixed order.
 */
#include "autograd.h"

#include <math.h>
#include <string.h>

/* What one kernel call works on; x and y have the call's dtype. */
struct reduce_args {
    const lgT_reduce *p;
    const void *x;
    void *y;
    int64_t *idx;
    bool is_max, lse;
    double scale;
};

#define LGC_TEMPLATE "../autograd/reduce_kernel.h"
#include "../core/instantiate.h"

typedef struct rsetup {
    bool mask[LG_MAX_DIMS];
    lgT_reduce p;
} rsetup;

static lg_tensor *setup(lg_ctx *ctx, lg_tensor *x, int naxes, const int *axes, bool keepdim,
                        const char *who, lg_dtype dt, rsetup *s)
{
    if (!ctx || !lgT_ok_float(ctx, x, who, "x"))
        return NULL;
    if (!lgT_axes_mask(ctx, naxes, axes, x->ndim, who, s->mask))
        return NULL;
    int64_t oshape[LG_MAX_DIMS];
    int ond = lgT_reduced_shape(x->ndim, x->shape, s->mask, keepdim, oshape);
    lgT_reduce_init(&s->p, x->ndim, x->shape, s->mask);
    lg_tensor *y = lgT_new(ctx, dt, ond, oshape, who);
    if (!y)
        return NULL;
    for (int d = 0; d < LG_MAX_DIMS; d++)
        y->attr.reduce.mask[d] = d < x->ndim && s->mask[d];
    y->attr.reduce.keepdim = keepdim;
    return y;
}

/* The plan and keepdim shape of y's reduction, for backward. */
static int backward_plan(const lg_tensor *y, const lg_tensor *x, lgT_reduce *p,
                         int64_t kshape[LG_MAX_DIMS])
{
    const bool *mask = y->attr.reduce.mask;
    if (p)
        lgT_reduce_init(p, x->ndim, x->shape, mask);
    return lgT_reduced_shape(x->ndim, x->shape, mask, true, kshape);
}

static lg_tensor *sum_or_mean(lg_ctx *ctx, int op, lg_tensor *x, int naxes, const int *axes,
                              bool keepdim)
{
    const char *who = op == LGA_OP_sum ? "lg_sum" : "lg_mean";
    rsetup s;
    lg_tensor *y = setup(ctx, x, naxes, axes, keepdim, who, x ? (lg_dtype)x->dtype : LG_F32, &s);
    if (!y)
        return NULL;
    double *acc = lgC_salloc(ctx, (size_t)s.p.outn * sizeof *acc, who);
    if (!acc)
        return NULL;
    lgT_reduce_sum(ctx, &s.p, x, acc);
    double scale = op == LGA_OP_mean ? 1.0 / (double)s.p.rcount : 1.0;
    for (int64_t o = 0; o < s.p.outn; o++)
        lgT_set(y, o, acc[o] * scale);
    return lgA_record(ctx, op, y, 1, &x);
}

lg_tensor *lg_sum(lg_ctx *ctx, lg_tensor *x, int naxes, const int *axes, bool keepdim)
{
    return sum_or_mean(ctx, LGA_OP_sum, x, naxes, axes, keepdim);
}

lg_tensor *lg_mean(lg_ctx *ctx, lg_tensor *x, int naxes, const int *axes, bool keepdim)
{
    return sum_or_mean(ctx, LGA_OP_mean, x, naxes, axes, keepdim);
}

static lg_status sum_mean_backward(lg_ctx *ctx, lg_tensor *y, double scale_by_count)
{
    lg_tensor *x = y->in[0];
    lgT_reduce p;
    int64_t kshape[LG_MAX_DIMS];
    int knd = backward_plan(y, x, &p, kshape);
    lg_tensor *dx = lgT_new_like(ctx, x, "lg_backward");
    if (!dx)
        return ctx->status;
    lgT_expand(ctx, dx, y->grad, knd, kshape);
    if (scale_by_count && p.rcount > 0) {
        struct reduce_args a = { .y = dx->data, .scale = 1.0 / (double)p.rcount };
        lgC_parallel(ctx, dx->numel, dx->numel,
                     dx->dtype == LG_F32 ? scale_range_f32 : scale_range_f64, &a);
    }
    return lgA_accum(ctx, x, dx);
}

lg_status lgA_bw_sum(lg_ctx *ctx, lg_tensor *y)
{
    return sum_mean_backward(ctx, y, false);
}

lg_status lgA_bw_mean(lg_ctx *ctx, lg_tensor *y)
{
    return sum_mean_backward(ctx, y, true);
}

/* max / min ------------------------------------------------------------ */

static lg_tensor *extreme(lg_ctx *ctx, int op, lg_tensor *x, int naxes, const int *axes,
                          bool keepdim, lg_tensor **indices)
{
    const char *who = op == LGA_OP_max ? "lg_max" : "lg_min";
    if (indices)
        *indices = NULL;
    rsetup s;
    lg_tensor *y = setup(ctx, x, naxes, axes, keepdim, who, x ? (lg_dtype)x->dtype : LG_F32, &s);
    if (!y)
        return NULL;
    if (s.p.rcount == 0)
        return lgC_error(ctx, LG_ERR_SHAPE, "%s: cannot reduce over an empty axis", who);
    lg_tensor *idx = lgT_new(ctx, LG_I64, y->ndim, y->shape, who);
    if (!idx)
        return NULL;
    struct reduce_args a = {
        .p = &s.p, .x = x->data, .y = y->data, .idx = LGT_I(idx), .is_max = op == LGA_OP_max
    };
    lgC_parallel(ctx, s.p.outn * s.p.rcount, s.p.outn,
                 x->dtype == LG_F32 ? rows_range_f32 : rows_range_f64, &a);
    y->saved = idx;
    if (indices)
        *indices = idx;
    return lgA_record(ctx, op, y, 1, &x);
}

lg_tensor *lg_max(lg_ctx *ctx, lg_tensor *x, int naxes, const int *axes, bool keepdim,
                  lg_tensor **indices)
{
    return extreme(ctx, LGA_OP_max, x, naxes, axes, keepdim, indices);
}

lg_tensor *lg_min(lg_ctx *ctx, lg_tensor *x, int naxes, const int *axes, bool keepdim,
                  lg_tensor **indices)
{
    return extreme(ctx, LGA_OP_min, x, naxes, axes, keepdim, indices);
}

static lg_status extreme_backward(lg_ctx *ctx, lg_tensor *y)
{
    lg_tensor *x = y->in[0];
    lgT_reduce p;
    int64_t kshape[LG_MAX_DIMS];
    backward_plan(y, x, &p, kshape);
    lg_tensor *dx = lgT_zeros_like(ctx, x, "lg_backward");
    if (!dx)
        return ctx->status;
    const int64_t *idx = LGT_I(y->saved);
    for (int64_t o = 0; o < p.outn; o++)
        lgT_set(dx, lgT_reduce_base(&p, o) + lgT_roff(&p, idx[o]), lgT_get(y->grad, o));
    return lgA_accum(ctx, x, dx);
}

lg_status lgA_bw_max(lg_ctx *ctx, lg_tensor *y)
{
    return extreme_backward(ctx, y);
}

lg_status lgA_bw_min(lg_ctx *ctx, lg_tensor *y)
{
    return extreme_backward(ctx, y);
}

/* logsumexp ------------------------------------------------------------ */

lg_tensor *lg_logsumexp(lg_ctx *ctx, lg_tensor *x, int naxes, const int *axes, bool keepdim)
{
    rsetup s;
    lg_tensor *y =
        setup(ctx, x, naxes, axes, keepdim, "lg_logsumexp", x ? (lg_dtype)x->dtype : LG_F32, &s);
    if (!y)
        return NULL;
    struct reduce_args a = { .p = &s.p, .x = x->data, .y = y->data, .lse = true };
    lgC_parallel(ctx, s.p.outn * s.p.rcount, s.p.outn,
                 x->dtype == LG_F32 ? rows_range_f32 : rows_range_f64, &a);
    return lgA_record(ctx, LGA_OP_logsumexp, y, 1, &x);
}

lg_status lgA_bw_logsumexp(lg_ctx *ctx, lg_tensor *y)
{
    lg_tensor *x = y->in[0];
    int64_t kshape[LG_MAX_DIMS];
    int knd = backward_plan(y, x, NULL, kshape);
    lg_tensor *gx = lgT_new_like(ctx, x, "lg_backward");
    lg_tensor *yx = gx ? lgT_new_like(ctx, x, "lg_backward") : NULL;
    if (!yx)
        return ctx->status;
    lgT_expand(ctx, gx, y->grad, knd, kshape);
    lgT_expand(ctx, yx, y, knd, kshape);
    if (x->dtype == LG_F32) {
        float *g = LGT_F(gx);
        const float *xv = LGT_F(x), *yv = LGT_F(yx);
        for (int64_t i = 0; i < x->numel; i++)
            g[i] *= expf(xv[i] - yv[i]);
    } else {
        double *g = LGT_D(gx);
        const double *xv = LGT_D(x), *yv = LGT_D(yx);
        for (int64_t i = 0; i < x->numel; i++)
            g[i] *= exp(xv[i] - yv[i]);
    }
    return lgA_accum(ctx, x, gx);
}

/* Taped backwards ------------------------------------------------------- */

/* g reshaped to y's keepdim shape, broadcastable against x. */
static lg_tensor *keep_shaped(lg_ctx *ctx, lg_tensor *y, lg_tensor *g)
{
    int64_t kshape[LG_MAX_DIMS];
    int knd = backward_plan(y, y->in[0], NULL, kshape);
    return lg_reshape(ctx, g, knd, kshape);
}

static lg_status sum_mean_taped(lg_ctx *ctx, lg_tensor *y, lg_tensor *g, bool mean)
{
    lg_tensor *x = y->in[0];
    if (!lgA_tneeds(y, 0))
        return LG_OK;
    lg_tensor *dx = lg_expand(ctx, keep_shaped(ctx, y, g), x->ndim, x->shape);
    if (mean) {
        lgT_reduce p;
        int64_t kshape[LG_MAX_DIMS];
        backward_plan(y, x, &p, kshape);
        if (p.rcount > 0)
            dx = lg_mul_scalar(ctx, dx, 1.0 / (double)p.rcount);
    }
    return lgA_taccum(ctx, x, dx);
}

lg_status lgA_tbw_sum(lg_ctx *ctx, lg_tensor *y, lg_tensor *g)
{
    return sum_mean_taped(ctx, y, g, false);
}

lg_status lgA_tbw_mean(lg_ctx *ctx, lg_tensor *y, lg_tensor *g)
{
    return sum_mean_taped(ctx, y, g, true);
}

/* max, min: g at the chosen element, through a constant 0/1 mask */
static lg_status extreme_taped(lg_ctx *ctx, lg_tensor *y, lg_tensor *g)
{
    lg_tensor *x = y->in[0];
    if (!lgA_tneeds(y, 0))
        return LG_OK;
    lgT_reduce p;
    int64_t kshape[LG_MAX_DIMS];
    backward_plan(y, x, &p, kshape);
    lg_tensor *mask = lgT_zeros_like(ctx, x, "lg_grad");
    if (!mask)
        return ctx->status;
    const int64_t *idx = LGT_I(y->saved);
    for (int64_t o = 0; o < p.outn; o++)
        lgT_set(mask, lgT_reduce_base(&p, o) + lgT_roff(&p, idx[o]), 1.0);
    return lgA_taccum(ctx, x, lg_mul(ctx, keep_shaped(ctx, y, g), mask));
}

lg_status lgA_tbw_max(lg_ctx *ctx, lg_tensor *y, lg_tensor *g)
{
    return extreme_taped(ctx, y, g);
}

lg_status lgA_tbw_min(lg_ctx *ctx, lg_tensor *y, lg_tensor *g)
{
    return extreme_taped(ctx, y, g);
}

/* logsumexp: g exp(x - y) */
lg_status lgA_tbw_logsumexp(lg_ctx *ctx, lg_tensor *y, lg_tensor *g)
{
    lg_tensor *x = y->in[0];
    if (!lgA_tneeds(y, 0))
        return LG_OK;
    lg_tensor *e = lg_exp(ctx, lg_sub(ctx, x, keep_shaped(ctx, y, y)));
    return lgA_taccum(ctx, x, lg_mul(ctx, keep_shaped(ctx, y, g), e));
}
