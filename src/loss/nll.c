/* nll.c: nll_loss.
 *
 *   l_i = -w[y_i] x[i, y_i]   (0 for ignored targets)
 * MEAN divides by D = sum of w[y_i] over non-ignored targets (NaN when
 * D = 0, an all-ignored MEAN included: 0 / 0, with a zero gradient, as
 * PyTorch). Targets and their checks: class_target.h.
 *
 * On [N, C] and [C] nll_loss is a fused primitive on the fused-loss driver
 * (fused.h): one element read per row, and a sparse gradient (zeros, and
 * -w[y_i] times the row's upstream at each target). Its composite (gather,
 * where, mul, sum) is the oracle (lg_ctx_set_fused(ctx, false)) and serves
 * K-dimensional inputs. An ignored row contributes 0 even over inf or NaN.
 */
#include "class_target.h"
#include "fused.h"

/* The composite, for any layout: -w[y] x[y], where ignored cut out. */
static lg_tensor *nll_composite(lg_ctx *ctx, const lgL_fused *f)
{
    lg_tensor *x = f->in[0], *t = f->in[1], *w = f->in[2];
    lgL_classes L = lgL_class_axes(x, t);
    lgL_picks P;
    if (!lgL_class_picks(ctx, t, f->idx, w, &L, &P))
        return NULL;
    lg_tensor *l = lg_mul(ctx, lgL_class_picked(ctx, x, t, &L, &P), P.neg_w);
    return lgL_class_reduce(ctx, l, f->r, f->denom);
}

/* The kernel reads one element per row, so one function serves both
 * float types: values in double (a float product so computed rounds as
 * float arithmetic would), stored in the input's type. */
static void store(void *p, lg_dtype dt, int64_t i, double v)
{
    if (dt == LG_F32)
        ((float *)p)[i] = (float)v;
    else
        ((double *)p)[i] = v;
}

static double nll_forward(const lgL_fused *f, int64_t lo, int64_t hi, void *l, void *gx,
                          double gscale)
{
    const lg_tensor *x = f->in[0], *w = f->in[2];
    const int64_t *y = f->idx;
    int64_t C = x->shape[x->ndim - 1];
    lg_dtype dt = (lg_dtype)x->dtype;
    double sum = 0;
    (void)gx, (void)gscale; /* no eager gradient: it is sparse */
    for (int64_t i = lo; i < hi; i++) {
        double v = 0;
        if (y[i] >= 0) /* an ignored row contributes 0, even over inf or NaN */
            v = -(w ? lgT_get(w, y[i]) : 1.0) * lgT_get(x, i * C + y[i]);
        if (l)
            store(l, dt, i, v);
        else
            sum += dt == LG_F32 ? (double)(float)v : v;
    }
    return sum;
}

/* dx[i, y_i] = -w[y_i] times the row's upstream (dx starts at zero). */
static void nll_backward(const lgL_fused *f, int64_t lo, int64_t hi, const void *up, double scale,
                         void *const *d)
{
    const lg_tensor *x = f->in[0], *w = f->in[2];
    const int64_t *y = f->idx;
    int64_t C = x->shape[x->ndim - 1];
    lg_dtype dt = (lg_dtype)x->dtype;
    if (!d[0])
        return;
    for (int64_t i = lo; i < hi; i++) {
        if (y[i] < 0)
            continue;
        double s = !up            ? scale
                   : dt == LG_F32 ? (double)((const float *)up)[i]
                                  : ((const double *)up)[i];
        store(d[0], dt, i * C + y[i], -(w ? lgT_get(w, y[i]) : 1.0) * s);
    }
}

static const lgL_fused_desc nll_fused = {
    .op = LGA_OP_nll_rows,
    .k = { { nll_forward, nll_backward }, { nll_forward, nll_backward } },
    .sparse_grads = true,
    .composite = nll_composite,
};

static lg_tensor *nll_loss_body(lg_ctx *ctx, lg_tensor *input, lg_tensor *target,
                                const lg_nll_opts *opts)
{
    static const char who[] = "lg_nll_loss";
    lg_nll_opts o;
    if (!lgC_opts(ctx, who, &lgL_desc_lg_nll_opts, opts, &o))
        return NULL;
    lgL_classes L;
    lgL_fused f;
    if (!lgL_class_common(ctx, input, target, o.reduction, who) ||
        !lgL_class_fused(ctx, &nll_fused, input, target, o.weight, o.ignore_index, o.reduction, who,
                         &L, &f))
        return NULL;
    if (input->ndim <= 2) /* rows of classes: the fused primitive */
        return lgL_fused_run(ctx, &f, who);
    return nll_composite(ctx, &f);
}

lg_tensor *lg_nll_loss(lg_ctx *ctx, lg_tensor *input, lg_tensor *target, const lg_nll_opts *opts)
{
    const char *outer = lgL_enter(ctx, "lg_nll_loss");
    return lgL_leave(ctx, outer, ctx ? nll_loss_body(ctx, input, target, opts) : NULL);
}
