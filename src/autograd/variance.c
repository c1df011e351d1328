/* variance.c: variance and standard deviation over a set of axes R
 * (torch.var / torch.std, 1.13), n = |R|, c = 1 (unbiased) or 0:
 *
 *   var: y = sum_R (x - m)^2 / (n - c),  m = sum_R x / n
 *        dx = 2 (x - m) g / (n - c)
 *   std: y = sqrt(var)
 *        dx = (x - m) g / ((n - c) y), 0 where y == 0
 * x: float, any shape; naxes 0 reduces every axis; y has lg_sum's shape
 * (keepdim: size-1 axes). Two passes in double per output, each output's
 * sums in a fixed order, one output per task: the same bits at any thread
 * count. PyTorch's edges, kept: an empty set gives NaN; n - c = 0 gives
 * 0 / 0 = NaN with a NaN gradient, except in PyTorch's dim-absent branch
 * (naxes 0, or a 0-d x), where var's gradient is g inf (std's g / NaN inf =
 * NaN). The mean and statistic of each output are kept (aux) for the
 * backward.
 */
#include "autograd.h"

#include <math.h>
#include <string.h>

/* What the forward leaves for the backward, in the step arena. */
typedef struct var_saved {
    lgT_reduce p;
    double dof;             /* n - c */
    bool is_std;            /* std, not var */
    bool dof0_inf;          /* dof 0 in PyTorch's dim-absent branch: dx = gv inf */
    bool mask[LG_MAX_DIMS]; /* the reduced axes of x (for the taped backward) */
    double *mean, *stat;    /* per output, in double */
} var_saved;

/* What one kernel call works on; x, y, g and dx have the call's dtype. */
struct var_args {
    const var_saved *v;
    const void *x, *g;
    void *y, *dx;
};

#define LGC_TEMPLATE "../autograd/variance_kernel.h"
#include "../core/instantiate.h"

static lg_tensor *var_or_std(lg_ctx *ctx, int op, lg_tensor *x, int naxes, const int *axes,
                             bool unbiased, bool keepdim)
{
    const char *who = op == LGA_OP_var ? "lg_var" : "lg_std";
    bool mask[LG_MAX_DIMS];
    if (!ctx || !lgT_ok_float(ctx, x, who, "x") ||
        !lgT_axes_mask(ctx, naxes, axes, x->ndim, who, mask))
        return NULL;
    int64_t oshape[LG_MAX_DIMS];
    int ond = lgT_reduced_shape(x->ndim, x->shape, mask, keepdim, oshape);
    lg_tensor *y = lgT_new(ctx, (lg_dtype)x->dtype, ond, oshape, who);
    var_saved *v = y ? lgC_salloc(ctx, sizeof *v, who) : NULL;
    if (!v)
        return NULL;
    lgT_reduce_init(&v->p, x->ndim, x->shape, mask);
    v->mean = lgC_salloc(ctx, (size_t)(2 * v->p.outn + 1) * sizeof(double), who);
    if (!v->mean)
        return NULL;
    v->stat = v->mean + v->p.outn;
    v->dof = (double)v->p.rcount - (unbiased ? 1.0 : 0.0);
    v->is_std = op == LGA_OP_std;
    v->dof0_inf = (naxes == 0 || x->ndim == 0) && v->dof == 0;
    memcpy(v->mask, mask, sizeof v->mask);
    struct var_args a = { .v = v, .x = x->data, .y = y->data };
    lgC_parallel(ctx, 2 * v->p.outn * v->p.rcount, v->p.outn,
                 x->dtype == LG_F32 ? var_fw_range_f32 : var_fw_range_f64, &a);
    y->aux = v;
    return lgA_record(ctx, op, y, 1, &x);
}

static lg_status var_backward(lg_ctx *ctx, lg_tensor *y)
{
    lg_tensor *x = y->in[0];
    const var_saved *v = y->aux;
    lg_tensor *dx = lgT_new_like(ctx, x, "lg_backward");
    if (!dx)
        return ctx->status;
    struct var_args a = { .v = v, .x = x->data, .g = y->grad->data, .dx = dx->data };
    lgC_parallel(ctx, v->p.outn * v->p.rcount, v->p.outn,
                 x->dtype == LG_F32 ? var_bw_range_f32 : var_bw_range_f64, &a);
    return lgA_accum(ctx, x, dx);
}

lg_tensor *lg_var(lg_ctx *ctx, lg_tensor *x, int naxes, const int *axes, bool unbiased,
                  bool keepdim)
{
    return var_or_std(ctx, LGA_OP_var, x, naxes, axes, unbiased, keepdim);
}

lg_status lgA_bw_var(lg_ctx *ctx, lg_tensor *y)
{
    return var_backward(ctx, y);
}

lg_tensor *lg_std(lg_ctx *ctx, lg_tensor *x, int naxes, const int *axes, bool unbiased,
                  bool keepdim)
{
    return var_or_std(ctx, LGA_OP_std, x, naxes, axes, unbiased, keepdim);
}

lg_status lgA_bw_std(lg_ctx *ctx, lg_tensor *y)
{
    return var_backward(ctx, y);
}

/* Taped, the kernel's rules with ops, m = mean_R x taken again (so that
 * the gradient depends on x through it too):
 *   var: dx = 2 (x - m) g / (n - c)
 *   std: dx = (x - m) g' / (n - c),  g' = g / y, 0 where y == 0
 * and in the dim-absent dof-0 edge dx = g inf (var), g' inf (std). */
static lg_status var_taped(lg_ctx *ctx, lg_tensor *y, lg_tensor *g)
{
    lg_tensor *x = y->in[0];
    const var_saved *v = y->aux;
    if (!lgA_tneeds(y, 0))
        return LG_OK;
    int64_t kshape[LG_MAX_DIMS];
    int axes[LG_MAX_DIMS], na = 0;
    for (int d = 0; d < x->ndim; d++) {
        kshape[d] = v->mask[d] ? 1 : x->shape[d];
        if (v->mask[d])
            axes[na++] = d;
    }
    lg_tensor *gk = lg_reshape(ctx, g, x->ndim, kshape);
    if (v->is_std) {
        lg_tensor *yk = lg_reshape(ctx, y, x->ndim, kshape), *zero = lgA_const(ctx, x, 0);
        lg_tensor *nz = lg_ne(ctx, yk, zero);
        gk = lg_where(ctx, nz, lg_div(ctx, gk, lg_where(ctx, nz, yk, lgA_const(ctx, x, 1))), zero);
    }
    if (v->dof0_inf) {
        lg_tensor *gx = lg_expand(ctx, gk, x->ndim, x->shape);
        return lgA_taccum(ctx, x, lg_mul(ctx, gx, lgA_const(ctx, x, INFINITY)));
    }
    lg_tensor *dev = lg_sub(ctx, x, lg_mean(ctx, x, na, axes, true));
    return lgA_taccum(ctx, x,
                      lg_mul(ctx, lg_mul_scalar(ctx, gk, (v->is_std ? 1.0 : 2.0) / v->dof), dev));
}

lg_status lgA_tbw_var(lg_ctx *ctx, lg_tensor *y, lg_tensor *g)
{
    return var_taped(ctx, y, g);
}

lg_status lgA_tbw_std(lg_ctx *ctx, lg_tensor *y, lg_tensor *g)
{
    return var_taped(ctx, y, g);
}
