/* pool.c: max, average and adaptive average pooling, 1-d and 2-d.
 *
 *   max:      y[o] = max over the window's positions i of x[i] (NaN wins);
 *             dx[argmax] += g[o]
 *   average:  y[o] = sum over the window's positions inside x / divisor;
 *             dx[i] += g[o] / divisor for each of them
 *   adaptive: average over [floor(o L / out), ceil((o + 1) L / out))
 * A window of output o along a dim starts at o s - p and spans
 * d (k - 1) + 1. Shapes: [..., H, W] planes (1-d: H = 1), the leading dims
 * (N, C or C) flattened into planes; every plane is its own work, so
 * results do not depend on the threads.
 *
 * Each dim's windows are tabulated once (lo, hi: the part inside the
 * input; full: the part inside the padded input, for count_include_pad)
 * and kept with the result for backward. Max pooling also keeps the
 * indices (int64, flat in the plane), returned to the caller if asked.
 *
 * Taped backwards (lg_grad): max pooling's is gather's adjoint at the kept
 * indices; average pooling is linear, and its gradient is the internal op
 * avg_pool_adjoint (the backward kernel), whose gradient is the average
 * again on the same windows.
 */
#include "autograd.h"

#include <math.h>
#include <string.h>

typedef struct pool_dim {
    int64_t in, out, k, s, p, d;
} pool_dim;

enum { POOL_MAX, POOL_AVG, POOL_ADAPTIVE };

typedef struct pool_plan {
    int kind;
    int64_t planes;
    pool_dim dim[2]; /* H (1 for 1-d ops), W */
    bool include_pad;
    int64_t divisor; /* 0: none */
    int64_t *lo[2], *hi[2], *full[2];
} pool_plan;

struct pool_args {
    const pool_plan *p;
    const void *x; /* backward: dx */
    void *y;       /* backward: g */
    int64_t *idx;
};

#define LGC_TEMPLATE "../autograd/pool_kernel.h"
#include "../core/instantiate.h"

/* ------------------------------------------------------------------ */
/* Options                                                              */
/* ------------------------------------------------------------------ */

static const lg_max_pool_opts max_defaults = { .defaults_tag = LG_OPTS_TAG,
                                               .stride = LG_POOL_STRIDE_KERNEL,
                                               .dilation = 1 };
static const lgC_optfield max_fields[] = {
    LGC_FIELD(lg_max_pool_opts, stride, "LG_POOL_STRIDE_KERNEL"),
    LGC_FIELD(lg_max_pool_opts, dilation, "1"),
};
static const lgC_opts_desc max_desc = LGC_DESC(lg_max_pool_opts, max_defaults, max_fields);

static const lg_avg_pool_opts avg_defaults = { .defaults_tag = LG_OPTS_TAG,
                                               .stride = LG_POOL_STRIDE_KERNEL,
                                               .count_include_pad = true,
                                               .divisor_override = LG_POOL_NO_DIVISOR };
static const lgC_optfield avg_fields[] = {
    LGC_FIELD(lg_avg_pool_opts, stride, "LG_POOL_STRIDE_KERNEL"),
    LGC_FIELD(lg_avg_pool_opts, count_include_pad, "true"),
    LGC_FIELD(lg_avg_pool_opts, divisor_override, "LG_POOL_NO_DIVISOR"),
};
static const lgC_opts_desc avg_desc = LGC_DESC(lg_avg_pool_opts, avg_defaults, avg_fields);

/* Resolves a pooling options struct: by hand, a field whose *_hw pair is
 * written may stay 0 (it then takes its default). fields[0] is stride,
 * fields[1] dilation (max) or another field. */
static bool pool_options(lg_ctx *ctx, const char *who, const lgC_opts_desc *d, const void *user,
                         void *out, const int64_t *stride_hw, const int64_t *dilation_hw,
                         int64_t *stride, int64_t *dilation)
{
    uint32_t kind = 0;
    if (lgC_opts_classify(ctx, who, d, user, &kind) != LGC_OPTS_HAND)
        return lgC_opts(ctx, who, d, user, out);
    lgC_optfield need[4];
    int n = 0;
    for (int i = 0; i < d->nfields; i++) {
        bool paired = (i == 0 && (stride_hw[0] || stride_hw[1])) ||
                      (dilation && !strcmp(d->fields[i].name, "dilation") &&
                       (dilation_hw[0] || dilation_hw[1]));
        if (!paired)
            need[n++] = d->fields[i];
    }
    if (!lgC_opts_check_hand(ctx, who, d, user, need, n))
        return false;
    memcpy(out, user, d->size);
    if (*stride == 0 && (stride_hw[0] || stride_hw[1]))
        *stride = LG_POOL_STRIDE_KERNEL;
    if (dilation && *dilation == 0 && (dilation_hw[0] || dilation_hw[1]))
        *dilation = 1;
    return true;
}

lg_max_pool_opts lg_max_pool_opts_default(void)
{
    return max_defaults;
}

lg_avg_pool_opts lg_avg_pool_opts_default(void)
{
    return avg_defaults;
}

/* ------------------------------------------------------------------ */
/* Shapes and windows                                                   */
/* ------------------------------------------------------------------ */

/* PyTorch's pooling_output_shape. */
static int64_t pool_out(const pool_dim *d, bool ceil_mode)
{
    int64_t span = d->d * (d->k - 1) + 1;
    int64_t num = d->in + 2 * d->p - span + (ceil_mode ? d->s - 1 : 0);
    int64_t out = (num >= 0 ? num / d->s : -((-num + d->s - 1) / d->s)) + 1;
    if (ceil_mode && (out - 1) * d->s >= d->in + d->p)
        out--;
    return out;
}

/* The input's planes and spatial sizes; false with an error if its ndim
 * or sizes do not fit. */
static bool pool_input(lg_ctx *ctx, const char *who, int spatial, const lg_tensor *x, pool_plan *p)
{
    if (!lgT_ok_float(ctx, x, who, "input"))
        return false;
    char sx[160];
    lgT_shape_str(x, sx, sizeof sx);
    if (x->ndim != spatial + 1 && x->ndim != spatial + 2)
        return lgC_fail(ctx, LG_ERR_SHAPE, "%s: input is %s, expected %d dims (N, C, %s) or %d",
                        who, sx, spatial + 2, spatial == 1 ? "L" : "H, W", spatial + 1);
    p->planes = 1;
    for (int d = 0; d < x->ndim - spatial; d++)
        p->planes *= x->shape[d];
    p->dim[0].in = spatial == 2 ? x->shape[x->ndim - 2] : 1;
    p->dim[1].in = x->shape[x->ndim - 1];
    for (int d = x->ndim - spatial; d < x->ndim; d++)
        if (x->shape[d] == 0)
            return lgC_fail(ctx, LG_ERR_SHAPE, "%s: input is %s, expected non-empty spatial dims",
                            who, sx);
    return true;
}

/* Checks one dim's kernel, stride, padding and dilation and sets its
 * output size. */
static bool pool_dim_ok(lg_ctx *ctx, const char *who, const lg_tensor *x, pool_dim *d,
                        bool ceil_mode)
{
    char sx[160];
    lgT_shape_str(x, sx, sizeof sx);
    if (d->k < 1 || d->s < 1 || d->d < 1 || d->p < 0)
        return lgC_fail(ctx, LG_ERR_VALUE,
                        "%s: kernel %lld, stride %lld, padding %lld, dilation %lld: expected "
                        "kernel, stride and dilation >= 1 and padding >= 0",
                        who, (long long)d->k, (long long)d->s, (long long)d->p, (long long)d->d);
    if (d->p > d->k / 2)
        return lgC_fail(ctx, LG_ERR_VALUE,
                        "%s: padding %lld is more than half the kernel size %lld (PyTorch's rule)",
                        who, (long long)d->p, (long long)d->k);
    if (d->k > (INT64_MAX / 4) / d->d || d->in > INT64_MAX / 4 - 2 * d->p)
        return lgC_fail(ctx, LG_ERR_VALUE, "%s: kernel or padding too large", who);
    d->out = pool_out(d, ceil_mode);
    if (d->out < 1)
        return lgC_fail(ctx, LG_ERR_SHAPE,
                        "%s: input %s with kernel %lld (dilation %lld), stride %lld and padding "
                        "%lld gives an output size %lld < 1",
                        who, sx, (long long)d->k, (long long)d->d, (long long)d->s, (long long)d->p,
                        (long long)d->out);
    return true;
}

/* Tabulates each dim's windows in the step arena. */
static bool pool_tables(lg_ctx *ctx, const char *who, pool_plan *p)
{
    for (int k = 0; k < 2; k++) {
        const pool_dim *d = &p->dim[k];
        int64_t *t = lgC_salloc(ctx, (size_t)(3 * d->out) * sizeof(int64_t), who);
        if (!t)
            return false;
        p->lo[k] = t, p->hi[k] = t + d->out, p->full[k] = t + 2 * d->out;
        for (int64_t o = 0; o < d->out; o++) {
            int64_t lo, hi, full;
            if (p->kind == POOL_ADAPTIVE) {
                lo = o * d->in / d->out;
                hi = ((o + 1) * d->in + d->out - 1) / d->out;
                full = hi - lo;
            } else if (p->kind == POOL_MAX) {
                lo = o * d->s - d->p;
                hi = lo + d->d * (d->k - 1) + 1;
                if (hi > d->in)
                    hi = d->in;
                while (lo < 0)
                    lo += d->d;
                full = 0;
                if (lo >= hi) /* PyTorch reads and writes outside the plane here */
                    return lgC_fail(ctx, LG_ERR_SHAPE,
                                    "%s: window %lld (of %lld) holds no input element: its "
                                    "dilated positions all fall in the padding",
                                    who, (long long)o, (long long)d->out);
            } else {
                int64_t start = o * d->s - d->p, end = start + d->k;
                full = (end < d->in + d->p ? end : d->in + d->p) - start;
                lo = start < 0 ? 0 : start;
                hi = end < d->in ? end : d->in;
            }
            p->lo[k][o] = lo, p->hi[k][o] = hi, p->full[k][o] = full;
        }
    }
    return true;
}

/* Completes p's windows for a kernel k {kh, kw} (NULL: adaptive pooling,
 * whose output sizes p holds already) with per-dim strides (or
 * LG_POOL_STRIDE_KERNEL), padding and dilation, checks them, and keeps the
 * plan and its tables in the step arena. NULL with the error recorded. */
static pool_plan *pool_windows(lg_ctx *ctx, const char *who, const lg_tensor *x, int spatial,
                               const int64_t *k, const int64_t st[2], const int64_t pd[2],
                               const int64_t dl[2], bool ceil_mode, pool_plan *p)
{
    for (int d = 0; k && d < 2; d++) {
        pool_dim *w = &p->dim[d];
        int64_t kd = d == 0 && spatial == 1 ? 1 : k[d];
        w->k = kd, w->s = st[d] == LG_POOL_STRIDE_KERNEL ? kd : st[d], w->p = pd[d];
        w->d = dl[d];
        if (spatial == 1 && d == 0)
            *w = (pool_dim){ 1, 1, 1, 1, 0, 1 };
        else if (!pool_dim_ok(ctx, who, x, w, ceil_mode))
            return NULL;
    }
    pool_plan *kept = lgC_salloc(ctx, sizeof *kept, who);
    if (!kept)
        return NULL;
    *kept = *p;
    return pool_tables(ctx, who, kept) ? kept : NULL;
}

/* The result: x's leading dims, then the output sizes. */
static lg_tensor *pool_result(lg_ctx *ctx, const char *who, const lg_tensor *x, int spatial,
                              const pool_plan *p, lg_dtype dt)
{
    int64_t shape[LG_MAX_DIMS];
    int nd = x->ndim;
    memcpy(shape, x->shape, sizeof(int64_t) * (size_t)nd);
    if (spatial == 2)
        shape[nd - 2] = p->dim[0].out;
    shape[nd - 1] = p->dim[1].out;
    return lgT_new(ctx, dt, nd, shape, who);
}

/* ------------------------------------------------------------------ */
/* The ops                                                              */
/* ------------------------------------------------------------------ */

static lg_tensor *max_pool(lg_ctx *ctx, const char *who, int spatial, lg_tensor *x, int64_t kh,
                           int64_t kw, const lg_max_pool_opts *user, lg_tensor **indices)
{
    if (indices)
        *indices = NULL;
    if (!ctx || lgC_failed(ctx, who))
        return NULL;
    lg_max_pool_opts o;
    pool_plan p = { .kind = POOL_MAX };
    if (!pool_input(ctx, who, spatial, x, &p) ||
        !pool_options(ctx, who, &max_desc, user, &o, user ? user->stride_hw : NULL,
                      user ? user->dilation_hw : NULL, &o.stride, &o.dilation))
        return NULL;
    int64_t st[2], pd[2], dl[2];
    if (!lgA_spatial_dims(ctx, who, "stride", o.stride, o.stride_hw, LG_POOL_STRIDE_KERNEL, spatial,
                          st) ||
        !lgA_spatial_dims(ctx, who, "padding", o.padding, o.padding_hw, 0, spatial, pd) ||
        !lgA_spatial_dims(ctx, who, "dilation", o.dilation, o.dilation_hw, 1, spatial, dl))
        return NULL;
    pool_plan *kept =
        pool_windows(ctx, who, x, spatial, (int64_t[]){ kh, kw }, st, pd, dl, o.ceil_mode, &p);
    if (!kept)
        return NULL;
    lg_tensor *y = pool_result(ctx, who, x, spatial, kept, (lg_dtype)x->dtype);
    lg_tensor *idx = y ? pool_result(ctx, who, x, spatial, kept, LG_I64) : NULL;
    if (!idx)
        return NULL;
    struct pool_args a = { .p = kept, .x = x->data, .y = y->data, .idx = (int64_t *)idx->data };
    int64_t work = y->numel * p.dim[0].k * p.dim[1].k;
    lgC_parallel(ctx, work, p.planes, x->dtype == LG_F32 ? max_fw_f32 : max_fw_f64, &a);
    y->aux = kept;
    y->saved = idx;
    if (indices)
        *indices = idx;
    return lgA_record(ctx, LGA_OP_max_pool, y, 1, &x);
}

static lg_tensor *avg_pool(lg_ctx *ctx, const char *who, int spatial, int kind, lg_tensor *x,
                           int64_t kh, int64_t kw, const lg_avg_pool_opts *user)
{
    if (!ctx || lgC_failed(ctx, who))
        return NULL;
    pool_plan p = { .kind = kind };
    int64_t st[2] = { 0 }, pd[2] = { 0 };
    bool ceil_mode = false;
    if (!pool_input(ctx, who, spatial, x, &p))
        return NULL;
    if (kind == POOL_ADAPTIVE) {
        int64_t out[2] = { spatial == 2 ? kh : 1, kw };
        for (int d = 0; d < 2; d++) {
            if (out[d] < 1)
                return lgC_error(ctx, LG_ERR_VALUE, "%s: output size %lld, expected >= 1", who,
                                 (long long)out[d]);
            p.dim[d].out = out[d];
        }
    } else {
        lg_avg_pool_opts o;
        if (!pool_options(ctx, who, &avg_desc, user, &o, user ? user->stride_hw : NULL, NULL,
                          &o.stride, NULL))
            return NULL;
        if (!lgA_spatial_dims(ctx, who, "stride", o.stride, o.stride_hw, LG_POOL_STRIDE_KERNEL,
                              spatial, st) ||
            !lgA_spatial_dims(ctx, who, "padding", o.padding, o.padding_hw, 0, spatial, pd))
            return NULL;
        bool none = o.divisor_override == LG_POOL_NO_DIVISOR;
        if (!none && (o.divisor_override < 1 || spatial == 1))
            return lgC_error(ctx, LG_ERR_VALUE,
                             spatial == 1 ? "%s: divisor_override is for 2-d pooling (PyTorch's "
                                            "avg_pool1d has none): leave it LG_POOL_NO_DIVISOR"
                                          : "%s: divisor_override = %lld, expected >= 1 (or "
                                            "LG_POOL_NO_DIVISOR for none)",
                             who, (long long)o.divisor_override);
        p.include_pad = o.count_include_pad;
        p.divisor = none ? 0 : o.divisor_override;
        ceil_mode = o.ceil_mode;
    }
    pool_plan *kept =
        pool_windows(ctx, who, x, spatial, kind == POOL_ADAPTIVE ? NULL : (int64_t[]){ kh, kw }, st,
                     pd, (int64_t[]){ 1, 1 }, ceil_mode, &p);
    if (!kept)
        return NULL;
    lg_tensor *y = pool_result(ctx, who, x, spatial, kept, (lg_dtype)x->dtype);
    if (!y)
        return NULL;
    struct pool_args a = { .p = kept, .x = x->data, .y = y->data };
    lgC_parallel(ctx, y->numel * 4 + x->numel, p.planes,
                 x->dtype == LG_F32 ? avg_fw_f32 : avg_fw_f64, &a);
    y->aux = kept;
    return lgA_record(ctx, LGA_OP_avg_pool, y, 1, &x);
}

lg_status lgA_bw_max_pool(lg_ctx *ctx, lg_tensor *y)
{
    lg_tensor *x = y->in[0];
    lg_tensor *dx = lgT_new_like(ctx, x, "lg_backward");
    if (!dx)
        return ctx->status;
    const pool_plan *p = y->aux;
    struct pool_args a = {
        .p = p, .x = dx->data, .y = y->grad->data, .idx = (int64_t *)y->saved->data
    };
    lgC_parallel(ctx, x->numel + y->numel, p->planes, x->dtype == LG_F32 ? max_bw_f32 : max_bw_f64,
                 &a);
    return lgA_accum(ctx, x, dx);
}

lg_status lgA_bw_avg_pool(lg_ctx *ctx, lg_tensor *y)
{
    lg_tensor *x = y->in[0];
    lg_tensor *dx = lgT_new_like(ctx, x, "lg_backward");
    if (!dx)
        return ctx->status;
    const pool_plan *p = y->aux;
    struct pool_args a = { .p = p, .x = dx->data, .y = y->grad->data };
    lgC_parallel(ctx, x->numel + y->numel * 4, p->planes,
                 x->dtype == LG_F32 ? avg_bw_f32 : avg_bw_f64, &a);
    return lgA_accum(ctx, x, dx);
}

lg_tensor *lg_max_pool1d(lg_ctx *ctx, lg_tensor *input, int64_t kernel_size,
                         const lg_max_pool_opts *o, lg_tensor **indices)
{
    return max_pool(ctx, "lg_max_pool1d", 1, input, 1, kernel_size, o, indices);
}

lg_tensor *lg_max_pool2d(lg_ctx *ctx, lg_tensor *input, int64_t kernel_h, int64_t kernel_w,
                         const lg_max_pool_opts *o, lg_tensor **indices)
{
    return max_pool(ctx, "lg_max_pool2d", 2, input, kernel_h, kernel_w, o, indices);
}

lg_tensor *lg_avg_pool1d(lg_ctx *ctx, lg_tensor *input, int64_t kernel_size,
                         const lg_avg_pool_opts *o)
{
    return avg_pool(ctx, "lg_avg_pool1d", 1, POOL_AVG, input, 1, kernel_size, o);
}

lg_tensor *lg_avg_pool2d(lg_ctx *ctx, lg_tensor *input, int64_t kernel_h, int64_t kernel_w,
                         const lg_avg_pool_opts *o)
{
    return avg_pool(ctx, "lg_avg_pool2d", 2, POOL_AVG, input, kernel_h, kernel_w, o);
}

lg_tensor *lg_adaptive_avg_pool1d(lg_ctx *ctx, lg_tensor *input, int64_t output_size)
{
    return avg_pool(ctx, "lg_adaptive_avg_pool1d", 1, POOL_ADAPTIVE, input, 1, output_size, NULL);
}

lg_tensor *lg_adaptive_avg_pool2d(lg_ctx *ctx, lg_tensor *input, int64_t out_h, int64_t out_w)
{
    return avg_pool(ctx, "lg_adaptive_avg_pool2d", 2, POOL_ADAPTIVE, input, out_h, out_w, NULL);
}

/* ------------------------------------------------------------------ */
/* Taped backwards                                                      */
/* ------------------------------------------------------------------ */

/* max_pool: dx = g scattered to the saved argmax positions, which are flat
 * in the plane: gather's adjoint of g [P, OH OW] into [P, H W] along the
 * plane axis, at the indices viewed as [P, OH OW]. Its own gradient is
 * gather of gy at the same indices. */
lg_status lgA_tbw_max_pool(lg_ctx *ctx, lg_tensor *y, lg_tensor *g)
{
    static const char who[] = "lg_grad";
    if (!lgA_tneeds(y, 0))
        return LG_OK;
    lg_tensor *x = y->in[0];
    const pool_plan *p = y->aux;
    int64_t in_hw = p->dim[0].in * p->dim[1].in, out_hw = p->dim[0].out * p->dim[1].out;
    lg_tensor *xv = lgT_view(ctx, x, 2, (int64_t[]){ p->planes, in_hw }, who);
    lg_tensor *iv = xv ? lgT_view(ctx, y->saved, 2, (int64_t[]){ p->planes, out_hw }, who) : NULL;
    if (!iv)
        return ctx->status;
    lg_tensor *d = lgA_gather_adjoint(ctx, lg_reshape(ctx, g, 2, iv->shape), xv, 1, iv);
    return lgA_taccum(ctx, x, d ? lg_reshape(ctx, d, x->ndim, x->shape) : NULL);
}

/* The average's two linear maps on a copy of plan p, recorded as ops:
 * forward (src of the input's shape -> the pooled shape, recorded as
 * avg_pool) or its adjoint (src of the pooled shape -> the input's,
 * recorded as avg_pool_adjoint, the kernels of lgA_bw_avg_pool); the
 * result shaped like `like`. Each is the other's gradient. */
static lg_tensor *avg_map(lg_ctx *ctx, const pool_plan *p, bool adjoint, lg_tensor *src,
                          const lg_tensor *like)
{
    static const char who[] = "lg_grad";
    if (!src)
        return NULL;
    pool_plan *kept = lgC_salloc(ctx, sizeof *kept, who);
    lg_tensor *y = kept ? lgT_new(ctx, (lg_dtype)src->dtype, like->ndim, like->shape, who) : NULL;
    if (!y)
        return NULL;
    *kept = *p; /* the window tables are shared: read only */
    bool f32 = src->dtype == LG_F32;
    int64_t work = src->numel + y->numel * 4;
    if (adjoint) {
        struct pool_args a = { .p = kept, .x = y->data, .y = src->data };
        lgC_parallel(ctx, work, p->planes, f32 ? avg_bw_f32 : avg_bw_f64, &a);
    } else {
        struct pool_args a = { .p = kept, .x = src->data, .y = y->data };
        lgC_parallel(ctx, work, p->planes, f32 ? avg_fw_f32 : avg_fw_f64, &a);
    }
    y->aux = kept;
    return lgA_record(ctx, adjoint ? LGA_OP_avg_pool_adjoint : LGA_OP_avg_pool, y, 1, &src);
}

/* avg_pool (y = A x, A linear): dx = A^T g, avg_pool_adjoint of g. */
lg_status lgA_tbw_avg_pool(lg_ctx *ctx, lg_tensor *y, lg_tensor *g)
{
    if (!lgA_tneeds(y, 0))
        return LG_OK;
    return lgA_taccum(ctx, y->in[0], avg_map(ctx, y->aux, true, g, y->in[0]));
}

/* avg_pool_adjoint (y = A^T g): dg = A gy, the average of gy. */
lg_status lgA_bw_avg_pool_adjoint(lg_ctx *ctx, lg_tensor *y)
{
    lg_tensor *g = y->in[0];
    lg_tensor *dg = lgT_new_like(ctx, g, "lg_backward");
    if (!dg)
        return ctx->status;
    const pool_plan *p = y->aux;
    struct pool_args a = { .p = p, .x = y->grad->data, .y = dg->data };
    lgC_parallel(ctx, y->numel + g->numel * 4, p->planes,
                 g->dtype == LG_F32 ? avg_fw_f32 : avg_fw_f64, &a);
    return lgA_accum(ctx, g, dg);
}

lg_status lgA_tbw_avg_pool_adjoint(lg_ctx *ctx, lg_tensor *y, lg_tensor *gy)
{
    if (!lgA_tneeds(y, 0))
        return LG_OK;
    return lgA_taccum(ctx, y->in[0], avg_map(ctx, y->aux, false, gy, y->in[0]));
}
