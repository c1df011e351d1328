/* softmax.c: softmax and log_softmax along one axis, max-shifted.
 *
 *   softmax:     y = exp(x - m) / s,        dx = y (g - sum(g y))
 *   log_softmax: y = x - m - log s,         dx = g - exp(y) sum(g)
 * with m = max(x), s = sum(exp(x - m)) along the axis; sums in double.
 * A row holding +inf or NaN, or only -inf, is NaN throughout (and so is
 * its gradient), as PyTorch.
 * x: float, any shape (0-d is one element); y: x's shape.
 */
#include "autograd.h"

#include <math.h>

#define SOFTMAX_KERNELS(T, SUF)                                                                    \
    static void fw_##SUF(lg_ctx *ctx, const lgT_reduce *p, const T *x, T *y, bool logy)            \
    {                                                                                              \
        int64_t st = p->nr ? p->rstride[0] : 1, n = p->rcount;                                     \
        LGT_FOR(                                                                                   \
            ctx, p->outn *n, for (int64_t o = 0; o < p->outn; o++) {                               \
                int64_t b = lgT_reduce_base(p, o);                                                 \
                const T *xo = x + b;                                                               \
                T *yo = y + b;                                                                     \
                double m = -INFINITY;                                                              \
                for (int64_t r = 0; r < n; r++)                                                    \
                    if (xo[r * st] > m || xo[r * st] != xo[r * st])                                \
                        m = xo[r * st];                                                            \
                /* a +inf makes the whole row NaN, as PyTorch's x - max; an all -inf               \
                 * row gives NaN through -inf - log 0 */                                           \
                if (isinf(m))                                                                      \
                    m = m > 0 ? NAN : 0;                                                           \
                double s = 0;                                                                      \
                for (int64_t r = 0; r < n; r++)                                                    \
                    s += exp((double)xo[r * st] - m);                                              \
                double ls = log(s);                                                                \
                for (int64_t r = 0; r < n; r++) {                                                  \
                    double v = (double)xo[r * st] - m;                                             \
                    yo[r * st] = (T)(logy ? v - ls : exp(v) / s);                                  \
                }                                                                                  \
            });                                                                                    \
    }                                                                                              \
    static void bw_##SUF(lg_ctx *ctx, const lgT_reduce *p, T *dx, const T *g, const T *y,          \
                         bool logy)                                                                \
    {                                                                                              \
        int64_t st = p->nr ? p->rstride[0] : 1, n = p->rcount;                                     \
        LGT_FOR(                                                                                   \
            ctx, p->outn *n, for (int64_t o = 0; o < p->outn; o++) {                               \
                int64_t b = lgT_reduce_base(p, o);                                                 \
                double s = 0;                                                                      \
                for (int64_t r = 0; r < n; r++)                                                    \
                    s += logy ? (double)g[b + r * st]                                              \
                              : (double)g[b + r * st] * (double)y[b + r * st];                     \
                for (int64_t r = 0; r < n; r++) {                                                  \
                    int64_t i = b + r * st;                                                        \
                    dx[i] = logy ? (T)(g[i] - exp((double)y[i]) * s) : (T)(y[i] * (g[i] - s));     \
                }                                                                                  \
            });                                                                                    \
    }
SOFTMAX_KERNELS(float, f32)
SOFTMAX_KERNELS(double, f64)

static void plan(const lg_tensor *x, int axis, lgT_reduce *p)
{
    bool mask[LG_MAX_DIMS] = { false };
    if (x->ndim > 0)
        mask[axis] = true;
    lgT_reduce_init(p, x->ndim, x->shape, mask);
}

static lg_tensor *softmax(lg_ctx *ctx, int op, lg_tensor *x, int axis)
{
    const char *who = op == LGA_OP_softmax ? "lg_softmax" : "lg_log_softmax";
    int ax;
    if (!ctx || !lgT_ok_float(ctx, x, who, "x") || !lgT_axis(ctx, axis, x->ndim, who, &ax))
        return NULL;
    lg_tensor *y = lgT_new_like(ctx, x, who);
    if (!y)
        return NULL;
    lgT_reduce p;
    plan(x, ax, &p);
    /* an empty x has no rows to walk, though their count may reach 2^60 */
    if (x->numel > 0 && x->dtype == LG_F32)
        fw_f32(ctx, &p, LGT_F(x), LGT_F(y), op == LGA_OP_log_softmax);
    else if (x->numel > 0)
        fw_f64(ctx, &p, LGT_D(x), LGT_D(y), op == LGA_OP_log_softmax);
    y->attr.axis.axis = ax;
    return lgA_record(ctx, op, y, 1, &x);
}

static lg_status softmax_backward(lg_ctx *ctx, lg_tensor *y, bool logy)
{
    lg_tensor *x = y->in[0];
    lg_tensor *dx = lgT_new_like(ctx, x, "lg_backward");
    if (!dx)
        return ctx->status;
    lgT_reduce p;
    plan(x, y->attr.axis.axis, &p);
    if (x->numel > 0 && x->dtype == LG_F32)
        bw_f32(ctx, &p, LGT_F(dx), LGT_F(y->grad), LGT_F(y), logy);
    else if (x->numel > 0)
        bw_f64(ctx, &p, LGT_D(dx), LGT_D(y->grad), LGT_D(y), logy);
    return lgA_accum(ctx, x, dx);
}

lg_tensor *lg_softmax(lg_ctx *ctx, lg_tensor *x, int axis)
{
    return softmax(ctx, LGA_OP_softmax, x, axis);
}

lg_tensor *lg_log_softmax(lg_ctx *ctx, lg_tensor *x, int axis)
{
    return softmax(ctx, LGA_OP_log_softmax, x, axis);
}

lg_status lgA_bw_softmax(lg_ctx *ctx, lg_tensor *y)
{
    return softmax_backward(ctx, y, false);
}

lg_status lgA_bw_log_softmax(lg_ctx *ctx, lg_tensor *y)
{
    return softmax_backward(ctx, y, true);
}
