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
    y->attr.naxes = 0;
    for (int d = 0; d < x->ndim; d++)
        if (s->mask[d])
            y->attr.axes[y->attr.naxes++] = d;
    y->attr.flag[0] = keepdim;
    return y;
}

/* The plan and keepdim shape of y's reduction, for backward. */
static int backward_plan(const lg_tensor *y, const lg_tensor *x, lgT_reduce *p,
                         int64_t kshape[LG_MAX_DIMS])
{
    bool mask[LG_MAX_DIMS] = { false };
    for (int i = 0; i < y->attr.naxes; i++)
        mask[y->attr.axes[i]] = true;
    if (x->ndim == 0)
        mask[0] = false;
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
        double s = 1.0 / (double)p.rcount;
        int64_t n = dx->numel;
        if (dx->dtype == LG_F32) {
            float *d = LGT_F(dx);
            LGT_FOR(ctx, n, for (int64_t i = 0; i < n; i++) d[i] = (float)((double)d[i] * s););
        } else {
            double *d = LGT_D(dx);
            LGT_FOR(ctx, n, for (int64_t i = 0; i < n; i++) d[i] = d[i] * s;);
        }
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

#define EXTREME_KERNEL(T, NAME)                                                                    \
    static void NAME(lg_ctx *ctx, const lgT_reduce *p, const T *x, T *y, int64_t *idx,             \
                     bool is_max)                                                                  \
    {                                                                                              \
        LGT_FOR(                                                                                   \
            ctx, p->outn * p->rcount, for (int64_t o = 0; o < p->outn; o++) {                      \
                const T *xo = x + lgT_reduce_base(p, o);                                           \
                T best = xo[0];                                                                    \
                int64_t bi = 0;                                                                    \
                for (int64_t r = 1; r < p->rcount && best == best; r++) {                          \
                    T v = xo[lgT_roff(p, r)];                                                      \
                    if (v != v || (is_max ? v > best : v < best))                                  \
                        best = v, bi = r;                                                          \
                }                                                                                  \
                y[o] = best;                                                                       \
                idx[o] = bi;                                                                       \
            });                                                                                    \
    }
EXTREME_KERNEL(float, extreme_f32)
EXTREME_KERNEL(double, extreme_f64)

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
    if (x->dtype == LG_F32)
        extreme_f32(ctx, &s.p, LGT_F(x), LGT_F(y), LGT_I(idx), op == LGA_OP_max);
    else
        extreme_f64(ctx, &s.p, LGT_D(x), LGT_D(y), LGT_I(idx), op == LGA_OP_max);
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

#define LSE_KERNEL(T, NAME)                                                                        \
    static void NAME(lg_ctx *ctx, const lgT_reduce *p, const T *x, T *y)                           \
    {                                                                                              \
        LGT_FOR(                                                                                   \
            ctx, p->outn * p->rcount, for (int64_t o = 0; o < p->outn; o++) {                      \
                const T *xo = x + lgT_reduce_base(p, o);                                           \
                double m = -INFINITY;                                                              \
                for (int64_t r = 0; r < p->rcount; r++) {                                          \
                    double v = xo[lgT_roff(p, r)];                                                 \
                    if (v > m || v != v)                                                           \
                        m = v;                                                                     \
                    if (m != m)                                                                    \
                        break;                                                                     \
                }                                                                                  \
                if (isinf(m))                                                                      \
                    m = 0;                                                                         \
                double s = 0;                                                                      \
                for (int64_t r = 0; r < p->rcount; r++)                                            \
                    s += exp((double)xo[lgT_roff(p, r)] - m);                                      \
                y[o] = (T)(log(s) + m);                                                            \
            });                                                                                    \
    }
LSE_KERNEL(float, lse_f32)
LSE_KERNEL(double, lse_f64)

lg_tensor *lg_logsumexp(lg_ctx *ctx, lg_tensor *x, int naxes, const int *axes, bool keepdim)
{
    rsetup s;
    lg_tensor *y =
        setup(ctx, x, naxes, axes, keepdim, "lg_logsumexp", x ? (lg_dtype)x->dtype : LG_F32, &s);
    if (!y)
        return NULL;
    if (x->dtype == LG_F32)
        lse_f32(ctx, &s.p, LGT_F(x), LGT_F(y));
    else
        lse_f64(ctx, &s.p, LGT_D(x), LGT_D(y));
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
