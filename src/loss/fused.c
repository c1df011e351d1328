/* fused.c: the fused-loss driver (see fused.h).
 *
 * Forward: output of the reduction's shape; the eager gradient while
 * training (SUM or MEAN, grad mode on, input 0 wants a gradient and no
 * other tape input does); the kernel over blocks of rows, split among the
 * threads; the block sums added in order; MEAN's division. Backward: the
 * eager gradient adopted (scaled once if the upstream is not 1), or the
 * kernel's backward over the rows with the upstream per row (NONE) or one
 * scale, and each gradient accumulated through autograd.
 */
#include "fused.h"
#include "loss.h"

#include <string.h>

void lgL_fused_none_shape(lgL_fused *f, const lg_tensor *t, int ndim)
{
    f->none_ndim = ndim;
    memcpy(f->none_shape, t->shape, (size_t)ndim * sizeof *t->shape);
}

static const lgL_kernels *kernels_of(const lgL_fused *f)
{
    return &f->desc->k[f->in[0]->dtype == LG_F32 ? 0 : 1];
}

/* The forward over blocks of rows: NONE writes values; otherwise each
 * block's sum goes to part[b]. */
typedef struct fw_job {
    const lgL_fused *f;
    lgL_forward_fn fw;
    lgL_row_fn row;
    void *l, *gx; /* NONE's values; the eager gradient */
    double gscale;
    double *part;
} fw_job;

/* A loss with a row kernel: each row's value stored (NONE) or summed in
 * order, in double. */
static double rows_forward(const fw_job *j, int64_t lo, int64_t hi)
{
    double s = 0;
    bool f32 = j->f->in[0]->dtype == LG_F32;
    for (int64_t i = lo; i < hi; i++) {
        double v = j->row(j->f, i);
        if (!j->l)
            s += v;
        else if (f32)
            ((float *)j->l)[i] = (float)v;
        else
            ((double *)j->l)[i] = v;
    }
    return s;
}

static void fw_blocks(void *arg, int64_t lo, int64_t hi)
{
    const fw_job *j = arg;
    const lgL_fused *f = j->f;
    for (int64_t b = lo; b < hi; b++) {
        int64_t r0 = b * f->block, r1 = r0 + f->block < f->rows ? r0 + f->block : f->rows;
        double s = j->fw ? j->fw(f, r0, r1, j->l, j->gx, j->gscale) : rows_forward(j, r0, r1);
        if (j->part)
            j->part[b] = s;
    }
}

static lg_tensor *make_output(lg_ctx *ctx, const lgL_fused *f, const char *who)
{
    lg_dtype dt = (lg_dtype)f->in[0]->dtype;
    if (f->r == LG_REDUCTION_NONE)
        return lgT_new(ctx, dt, f->none_ndim, f->none_shape, who);
    return lgT_new(ctx, dt, 0, NULL, who);
}

static bool wants_eager(const lg_ctx *ctx, const lgL_fused *f)
{
    if (!f->desc->eager || f->r == LG_REDUCTION_NONE || ctx->no_grad > 0 ||
        !f->in[0]->requires_grad)
        return false;
    for (int k = 1; k < f->ntape; k++)
        if (f->in[k]->requires_grad)
            return false;
    return true;
}

lg_tensor *lgL_fused_run(lg_ctx *ctx, lgL_fused *f, const char *who)
{
    if (ctx->composite && f->desc->composite)
        return f->desc->composite(ctx, f);
    if (f->block <= 0) /* unset: about LGL_BLOCK_WORK units of work a block */
        f->block = f->width > 0 && f->width < LGL_BLOCK_WORK ? LGL_BLOCK_WORK / f->width : 1;
    if (f->denom < 0 && !f->denom_set) /* unset: the number of rows */
        f->denom = (double)f->rows;
    lg_tensor *l = make_output(ctx, f, who);
    if (!l)
        return NULL;
    f->out = l;
    bool none = f->r == LG_REDUCTION_NONE;
    double scale = f->r == LG_REDUCTION_MEAN ? 1 / f->denom : 1;
    bool eager = wants_eager(ctx, f);
    f->gx = eager ? lgT_new_like(ctx, f->in[0], who) : NULL;
    if (eager && !f->gx)
        return NULL;
    if (f->desc->prepare && !f->desc->prepare(ctx, f))
        return NULL;
    int64_t nb = f->rows > 0 ? (f->rows + f->block - 1) / f->block : 0;
    fw_job j = { .f = f,
                 .fw = kernels_of(f)->forward,
                 .row = kernels_of(f)->row,
                 .l = none ? l->data : NULL,
                 .gx = f->gx ? f->gx->data : NULL,
                 .gscale = scale };
    if (!none) {
        j.part = lgC_salloc(ctx, (size_t)(nb ? nb : 1) * sizeof *j.part, who);
        if (!j.part)
            return NULL;
    }
    lgC_parallel(ctx, f->rows * f->width, nb, fw_blocks, &j);
    if (!none) {
        double s = 0;
        for (int64_t b = 0; b < nb; b++)
            s += j.part[b];
        if (f->desc->total)
            s = f->desc->total(f, s);
        else if (f->r == LG_REDUCTION_MEAN)
            s /= f->denom; /* 0/0: NaN for an empty input, as PyTorch */
        lgT_set(l, 0, s);
    }
    lgL_fused *kept = lgC_salloc(ctx, sizeof *kept, who);
    if (!kept)
        return NULL;
    *kept = *f;
    l->aux = kept;
    return lgA_record(ctx, f->desc->op, l, f->ntape, f->in);
}

typedef struct bw_job {
    const lgL_fused *f;
    lgL_backward_fn bw;
    lgL_row_grad_fn row_grad;
    const void *up;
    double scale;
    void *const *d;
} bw_job;

static void bw_rows(void *arg, int64_t lo, int64_t hi)
{
    const bw_job *j = arg;
    if (j->bw) {
        j->bw(j->f, lo, hi, j->up, j->scale, j->d);
        return;
    }
    bool f32 = j->f->in[0]->dtype == LG_F32;
    for (int64_t i = lo; i < hi; i++) {
        double g = !j->up ? j->scale
                   : f32  ? (double)((const float *)j->up)[i]
                          : ((const double *)j->up)[i];
        j->row_grad(j->f, i, g, j->d);
    }
}

lg_status lgA_bw_fused(lg_ctx *ctx, lg_tensor *l)
{
    const lgL_fused *f = l->aux;
    bool none = f->r == LG_REDUCTION_NONE;
    double g = none ? 0 : lgT_get(l->grad, 0);
    bool others = false;
    for (int k = 1; k < f->ntape; k++)
        others |= lgA_needs(l, k);
    if (f->gx && !others) /* made by the forward for an upstream of 1 */
        return lgL_adopt_scaled(ctx, f->in[0], f->gx, g);
    lg_tensor *d[LGL_FUSED_MAX_IN] = { 0 };
    void *dd[LGL_FUSED_MAX_IN] = { 0 };
    for (int k = 0; k < f->ntape; k++) {
        if (!lgA_needs(l, k))
            continue;
        d[k] = f->desc->sparse_grads ? lgT_zeros_like(ctx, f->in[k], "lg_backward")
                                     : lgT_new_like(ctx, f->in[k], "lg_backward");
        if (!d[k])
            return ctx->status;
        dd[k] = d[k]->data;
    }
    bw_job j = { .f = f,
                 .bw = kernels_of(f)->backward,
                 .row_grad = kernels_of(f)->row_grad,
                 .up = none ? l->grad->data : NULL,
                 .scale = f->r == LG_REDUCTION_MEAN ? g / f->denom : g,
                 .d = dd };
    lgC_parallel(ctx, f->rows * f->width, f->rows, bw_rows, &j);
    for (int k = 0; k < f->ntape; k++)
        if (d[k] && lgA_accum(ctx, f->in[k], d[k]) != LG_OK)
            return ctx->status;
    return LG_OK;
}

/* The taped backward: the loss's composite, rebuilt from the same call
 * and differentiated with ops (grad.c), so every fused loss is twice
 * differentiable. */
static lg_tensor *rebuild_composite(lg_ctx *ctx, lg_tensor *l, void *arg)
{
    (void)arg;
    const lgL_fused *f = l->aux;
    return f->desc->composite(ctx, f);
}

lg_status lgL_taped_composite(lg_ctx *ctx, lg_tensor *l, lg_tensor *g)
{
    return lgA_taped_by_rebuild(ctx, l, g, rebuild_composite, NULL);
}

lg_tensor *lgL_row_upstream(lg_ctx *ctx, const lgL_fused *f, lg_tensor *g)
{
    return f->r == LG_REDUCTION_MEAN ? lg_mul_scalar(ctx, g, 1 / f->denom) : g;
}

lg_status lgA_tbw_fused(lg_ctx *ctx, lg_tensor *l, lg_tensor *g)
{
    const lgL_fused *f = l->aux;
    return f->desc->taped ? f->desc->taped(ctx, f, l, g) : lgL_taped_composite(ctx, l, g);
}
