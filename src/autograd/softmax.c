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
#include "../tensor/vmath.h"

#include <math.h>

/* What one kernel call works on: forward x -> y; backward y (in x) and
 * g -> dx (in y). The pointers have the call's dtype. */
struct softmax_args {
    const lgT_reduce *p;
    const void *x, *g;
    void *y;
    bool logy;
};

/* Rows up to this long keep their exponentials on the stack (forward). */
#define SOFTMAX_KEEP 512

#define LGC_TEMPLATE "../autograd/softmax_kernel.h"
#include "../core/instantiate.h"

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
    struct softmax_args a = {
        .p = &p, .x = x->data, .y = y->data, .logy = op == LGA_OP_log_softmax
    };
    if (x->numel > 0)
        lgC_parallel(ctx, p.outn * p.rcount, p.outn,
                     x->dtype == LG_F32 ? softmax_fw_range_f32 : softmax_fw_range_f64, &a);
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
    struct softmax_args a = {
        .p = &p, .x = y->data, .g = y->grad->data, .y = dx->data, .logy = logy
    };
    if (x->numel > 0)
        lgC_parallel(ctx, p.outn * p.rcount, p.outn,
                     x->dtype == LG_F32 ? softmax_bw_range_f32 : softmax_bw_range_f64, &a);
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

/* Taped: softmax dx = y (g - sum(g y)); log_softmax dx = g - e^y sum(g) */
lg_status lgA_tbw_softmax(lg_ctx *ctx, lg_tensor *y, lg_tensor *g)
{
    if (!lgA_tneeds(y, 0))
        return LG_OK;
    int ax = y->attr.axis.axis;
    lg_tensor *s = lg_sum(ctx, lg_mul(ctx, g, y), 1, &ax, true);
    return lgA_taccum(ctx, y->in[0], lg_mul(ctx, y, lg_sub(ctx, g, s)));
}

lg_status lgA_tbw_log_softmax(lg_ctx *ctx, lg_tensor *y, lg_tensor *g)
{
    if (!lgA_tneeds(y, 0))
        return LG_OK;
    int ax = y->attr.axis.axis;
    lg_tensor *s = lg_sum(ctx, g, 1, &ax, true);
    return lgA_taccum(ctx, y->in[0], lg_sub(ctx, g, lg_mul(ctx, lg_exp(ctx, y), s)));
}
