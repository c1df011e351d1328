/* norm.c: the p-norm over axes, and pairwise distance built on it.
 *
 *   y = (sum_R |x|^p)^(1/p) for p != 0 (negative p too), max_R |x| for p = inf,
 *   min_R |x| for p = -inf, the number of non-zeros for p = 0.
 *   dx = g sign(x) |x|^(p-1) / y^(p-1);  p = 1: g sign(x);  p = 2: g x / y;
 *   p = +-inf: g sign(x) / k at the k elements where |x| == y;  p = 0: 0.
 *   Where y == 0 the gradient is 0 (as PyTorch).
 * pairwise_distance(x1, x2) = norm(x1 - x2 + eps, p, last axis): composite.
 */
#include "autograd.h"

#include <math.h>

static double norm_of(const lg_tensor *x, const lgT_reduce *p, int64_t o, double pw)
{
    int64_t b = lgT_reduce_base(p, o);
    double s = pw == -INFINITY ? INFINITY : 0;
    for (int64_t r = 0; r < p->rcount; r++) {
        double v = fabs(lgT_get(x, b + lgT_roff(p, r)));
        if (pw == INFINITY)
            s = (v > s || v != v) ? v : s;
        else if (pw == -INFINITY)
            s = (v < s || v != v) ? v : s;
        else if (pw == 0)
            s += v != 0;
        else if (pw == 1)
            s += v;
        else if (pw == 2)
            s += v * v;
        else
            s += pow(v, pw);
    }
    if (isinf(pw) || pw == 1 || pw == 0)
        return s;
    return pw == 2 ? sqrt(s) : pow(s, 1.0 / pw);
}

/* The common case, p = 2 over the last axis: typed loops (norm_kernel.h). */
struct l2_args {
    const void *x, *g;
    void *y, *dx; /* y: read by the backward */
    int64_t R;
};

#define LGC_TEMPLATE "../autograd/norm_kernel.h"
#include "../core/instantiate.h"

/* The general case, one output element per index: y[o] = norm_of(...). */
struct norm_args {
    const lg_tensor *x;
    lg_tensor *y;
    const lgT_reduce *p;
    double pw;
};

static void norm_range(void *arg, int64_t lo, int64_t hi)
{
    const struct norm_args *a = arg;
    for (int64_t o = lo; o < hi; o++)
        lgT_set(a->y, o, norm_of(a->x, a->p, o, a->pw));
}

static bool last_axis_only(const lg_tensor *x, const bool *mask)
{
    for (int d = 0; d < x->ndim; d++)
        if (mask[d] != (d == x->ndim - 1))
            return false;
    return x->ndim > 0;
}

lg_tensor *lg_norm(lg_ctx *ctx, lg_tensor *x, double p, int naxes, const int *axes, bool keepdim)
{
    static const char who[] = "lg_norm";
    bool mask[LG_MAX_DIMS];
    if (!ctx || !lgT_ok_float(ctx, x, who, "x") ||
        !lgT_axes_mask(ctx, naxes, axes, x->ndim, who, mask))
        return NULL;
    if (isnan(p))
        return lgC_error(ctx, LG_ERR_VALUE, "lg_norm: p is NaN, expected a number or +-INFINITY");
    int64_t oshape[LG_MAX_DIMS];
    int ond = lgT_reduced_shape(x->ndim, x->shape, mask, keepdim, oshape);
    lg_tensor *y = lgT_new(ctx, (lg_dtype)x->dtype, ond, oshape, who);
    if (!y)
        return NULL;
    int64_t R = x->ndim ? x->shape[x->ndim - 1] : 1;
    if (p == 2 && last_axis_only(x, mask) && R > 0) {
        struct l2_args a = { .x = x->data, .y = y->data, .R = R };
        lgC_parallel(ctx, y->numel * R, y->numel,
                     x->dtype == LG_F32 ? l2_fw_range_f32 : l2_fw_range_f64, &a);
    } else {
        lgT_reduce pl;
        lgT_reduce_init(&pl, x->ndim, x->shape, mask);
        struct norm_args a = { .x = x, .y = y, .p = &pl, .pw = p };
        lgC_parallel(ctx, pl.outn * pl.rcount, pl.outn, norm_range, &a);
    }
    y->attr.norm.p = p;
    for (int d = 0; d < LG_MAX_DIMS; d++)
        y->attr.norm.mask[d] = d < x->ndim && mask[d];
    return lgA_record(ctx, LGA_OP_norm, y, 1, &x);
}

static double sgn(double v)
{
    return v > 0 ? 1.0 : (v < 0 ? -1.0 : 0.0);
}

lg_status lgA_bw_norm(lg_ctx *ctx, lg_tensor *y)
{
    lg_tensor *x = y->in[0];
    double pw = y->attr.norm.p;
    const bool *mask = y->attr.norm.mask;
    int64_t R = x->ndim ? x->shape[x->ndim - 1] : 1;
    if (pw == 2 && last_axis_only(x, mask) && R > 0) {
        lg_tensor *d2 = lgT_new_like(ctx, x, "lg_backward");
        if (!d2)
            return ctx->status;
        struct l2_args a = {
            .x = x->data, .g = y->grad->data, .y = y->data, .dx = d2->data, .R = R
        };
        lgC_parallel(ctx, y->numel * R, y->numel,
                     x->dtype == LG_F32 ? l2_bw_range_f32 : l2_bw_range_f64, &a);
        return lgA_accum(ctx, x, d2);
    }
    lgT_reduce p;
    lgT_reduce_init(&p, x->ndim, x->shape, mask);
    lg_tensor *dx = lgT_zeros_like(ctx, x, "lg_backward");
    if (!dx)
        return ctx->status;
    for (int64_t o = 0; o < p.outn; o++) {
        double n = lgT_get(y, o), g = lgT_get(y->grad, o);
        if (n == 0 || pw == 0)
            continue;
        int64_t b = lgT_reduce_base(&p, o), ties = 0;
        if (isinf(pw))
            for (int64_t r = 0; r < p.rcount; r++)
                ties += fabs(lgT_get(x, b + lgT_roff(&p, r))) == n;
        for (int64_t r = 0; r < p.rcount; r++) {
            int64_t i = b + lgT_roff(&p, r);
            double v = lgT_get(x, i), d;
            if (isinf(pw))
                d = fabs(v) == n ? g * sgn(v) / (double)ties : 0;
            else if (pw == 1)
                d = g * sgn(v);
            else if (pw == 2)
                d = g * v / n;
            else
                d = g * sgn(v) * pow(fabs(v), pw - 1) / pow(n, pw - 1);
            lgT_set(dx, i, d);
        }
    }
    return lgA_accum(ctx, x, dx);
}

lg_tensor *lg_pairwise_distance(lg_ctx *ctx, lg_tensor *x1, lg_tensor *x2, double p, double eps,
                                bool keepdim)
{
    lg_tensor *d = lg_add_scalar(ctx, lg_sub(ctx, x1, x2), eps);
    if (!d)
        return NULL;
    if (d->ndim == 0)
        return lgC_error(ctx, LG_ERR_SHAPE,
                         "lg_pairwise_distance: inputs are 0-d, expected >= 1 dim");
    return lg_norm(ctx, d, p, 1, (int[]){ -1 }, keepdim);
}

/* Taped: the same rules as the kernel, with ops; 0 where the norm is 0. */
lg_status lgA_tbw_norm(lg_ctx *ctx, lg_tensor *y, lg_tensor *g)
{
    lg_tensor *x = y->in[0];
    double pw = y->attr.norm.p;
    if (!lgA_tneeds(y, 0) || pw == 0)
        return LG_OK;
    int64_t kshape[LG_MAX_DIMS];
    int axes[LG_MAX_DIMS], na = 0;
    for (int d = 0; d < x->ndim; d++) {
        kshape[d] = y->attr.norm.mask[d] ? 1 : x->shape[d];
        if (y->attr.norm.mask[d])
            axes[na++] = d;
    }
    lg_tensor *yk = lg_reshape(ctx, y, x->ndim, kshape), *gk = lg_reshape(ctx, g, x->ndim, kshape);
    lg_tensor *zero = lgA_const(ctx, x, 0), *one = lgA_const(ctx, x, 1);
    lg_tensor *nz = lg_ne(ctx, yk, zero), *safe = lg_where(ctx, nz, yk, one);
    lg_tensor *sign = lg_sign(ctx, x), *d;
    if (isinf(pw)) {
        lg_tensor *hit = lg_eq(ctx, lg_abs(ctx, x), yk);
        lg_tensor *ties = lg_sum(ctx, hit, na, axes, true);
        d = lg_div(ctx, lg_mul(ctx, sign, hit), lg_where(ctx, nz, ties, one));
    } else if (pw == 1) {
        d = sign;
    } else if (pw == 2) {
        d = lg_div(ctx, x, safe);
    } else {
        d = lg_div(ctx, lg_mul(ctx, sign, lg_pow_scalar(ctx, lg_abs(ctx, x), pw - 1)),
                   lg_pow_scalar(ctx, safe, pw - 1));
    }
    return lgA_taccum(ctx, x, lg_mul(ctx, lg_mul(ctx, gk, d), nz));
}
