/* interpolate.c: F.interpolate's nearest and bilinear resampling of
 * [N, C, H, W] (PyTorch 1.13's index formulas, recompute_scale_factor unset).
 *
 *   nearest:  y[oh, ow] = x[sh(oh), sw(ow)]
 *   bilinear: y[oh, ow] = sum over a in {0, 1}, b in {0, 1} of
 *             lh_a(oh) lw_b(ow) x[ih_a(oh), iw_b(ow)]
 *   backward: the adjoint, dx[i] += (weight of i in y[o]) g[o]
 * Each dim's map from an output index to its one or two source indices
 * and weights is tabulated once (interp_table below holds the formulas),
 * kept with the result for backward. The leading dims N C are flattened
 * into planes; every plane is its own work, forward and backward, so
 * results do not depend on the threads.
 *
 * The resampling is linear: lg_grad's taped backward is the internal op
 * interpolate_adjoint (the backward kernel), whose gradient is the
 * resampling again with the same tables.
 */
#include "autograd.h"

#include <math.h>
#include <string.h>

typedef struct interp_dim {
    int64_t in, out;
    double factor;    /* the scale factor given for this dim; 0: a size was given */
    int64_t *i0, *i1; /* [out]: the source indices (nearest: i1 = i0) */
    double *l0, *l1;  /* [out]: their weights (bilinear only) */
} interp_dim;

typedef struct interp_plan {
    int64_t planes;
    bool bilinear, align_corners;
    interp_dim dim[2]; /* H, W */
} interp_plan;

struct interp_args {
    const interp_plan *p;
    const void *x; /* backward: dx */
    void *y;       /* backward: g */
};

#define LGC_TEMPLATE "../autograd/interpolate_kernel.h"
#include "../core/instantiate.h"

static const char WHO[] = "lg_interpolate";

/* ------------------------------------------------------------------ */
/* Options                                                              */
/* ------------------------------------------------------------------ */

/* Every field's default is 0 (no size, no factor: itself an error). */
static const lg_interpolate_opts interp_defaults = { .defaults_tag = LG_OPTS_TAG };
static const lgC_opts_desc interp_desc = LGC_DESC0(lg_interpolate_opts, interp_defaults);

lg_interpolate_opts lg_interpolate_opts_default(void)
{
    return interp_defaults;
}

/* The output sizes given (0 each if none): size for both dims or size_hw. */
static bool sizes_of(lg_ctx *ctx, const lg_interpolate_opts *o, int64_t out[2])
{
    const int64_t *hw = o->size_hw;
    out[0] = out[1] = 0;
    if (hw[0] || hw[1]) {
        if (o->size)
            return lgC_fail(ctx, LG_ERR_VALUE,
                            "%s: size = %lld and size_hw = {%lld, %lld}: both are written; "
                            "write one",
                            WHO, (long long)o->size, (long long)hw[0], (long long)hw[1]);
        if (hw[0] < 1 || hw[1] < 1)
            return lgC_fail(ctx, LG_ERR_VALUE, "%s: size_hw = {%lld, %lld}: expected both >= 1",
                            WHO, (long long)hw[0], (long long)hw[1]);
        out[0] = hw[0], out[1] = hw[1];
    } else if (o->size) {
        if (o->size < 1)
            return lgC_fail(ctx, LG_ERR_VALUE, "%s: size = %lld: expected >= 1 (0: not given)", WHO,
                            (long long)o->size);
        out[0] = out[1] = o->size;
    }
    return true;
}

static bool factor_ok(double f)
{
    return isfinite(f) && f > 0;
}

/* The scale factors given (0 each if none): scale_factor or scale_factor_hw. */
static bool factors_of(lg_ctx *ctx, const lg_interpolate_opts *o, double out[2])
{
    const double *hw = o->scale_factor_hw;
    out[0] = out[1] = 0;
    if (hw[0] != 0 || hw[1] != 0) {
        if (o->scale_factor != 0)
            return lgC_fail(ctx, LG_ERR_VALUE,
                            "%s: scale_factor = %g and scale_factor_hw = {%g, %g}: both are "
                            "written; write one",
                            WHO, o->scale_factor, hw[0], hw[1]);
        if (!factor_ok(hw[0]) || !factor_ok(hw[1]))
            return lgC_fail(ctx, LG_ERR_VALUE,
                            "%s: scale_factor_hw = {%g, %g}: expected both finite and > 0", WHO,
                            hw[0], hw[1]);
        out[0] = hw[0], out[1] = hw[1];
    } else if (o->scale_factor != 0) {
        if (!factor_ok(o->scale_factor))
            return lgC_fail(ctx, LG_ERR_VALUE,
                            "%s: scale_factor = %g: expected finite and > 0 (0: not given)", WHO,
                            o->scale_factor);
        out[0] = out[1] = o->scale_factor;
    }
    return true;
}

/* Resolves the options and sets each dim's output size and factor. */
static bool interp_options(lg_ctx *ctx, const lg_interpolate_opts *user, interp_plan *p)
{
    lg_interpolate_opts o;
    if (!lgC_opts(ctx, WHO, &interp_desc, user, &o))
        return false;
    if (o.mode != LG_INTERP_NEAREST && o.mode != LG_INTERP_BILINEAR)
        return lgC_fail(ctx, LG_ERR_VALUE,
                        "%s: mode = %d: expected LG_INTERP_NEAREST or LG_INTERP_BILINEAR", WHO,
                        (int)o.mode);
    if (o.align_corners && o.mode == LG_INTERP_NEAREST)
        return lgC_fail(ctx, LG_ERR_VALUE,
                        "%s: align_corners: only for bilinear mode (PyTorch raises for nearest)",
                        WHO);
    int64_t size[2];
    double factor[2];
    if (!sizes_of(ctx, &o, size) || !factors_of(ctx, &o, factor))
        return false;
    bool has_size = size[0] != 0, has_factor = factor[0] != 0;
    if (has_size && has_factor)
        return lgC_fail(ctx, LG_ERR_VALUE,
                        "%s: size%s and scale_factor%s: both are given; PyTorch takes exactly one",
                        WHO, o.size ? "" : "_hw", o.scale_factor != 0 ? "" : "_hw");
    if (!has_size && !has_factor)
        return lgC_fail(
            ctx, LG_ERR_VALUE,
            "%s: size, size_hw, scale_factor, scale_factor_hw: none is given (NULL, "
            "zeroed or default options give none); PyTorch takes exactly one of size and "
            "scale_factor",
            WHO);
    p->bilinear = o.mode == LG_INTERP_BILINEAR;
    p->align_corners = o.align_corners;
    for (int d = 0; d < 2; d++) {
        interp_dim *dm = &p->dim[d];
        dm->factor = factor[d];
        if (has_size) {
            dm->out = size[d];
            continue;
        }
        double want = floor((double)dm->in * factor[d]); /* PyTorch's, in double */
        if (!(want < (double)(INT64_MAX / 8)))
            return lgC_fail(ctx, LG_ERR_VALUE,
                            "%s: scale_factor: %g times the input's size %lld is too large an "
                            "output size",
                            WHO, factor[d], (long long)dm->in);
        dm->out = (int64_t)want;
        if (dm->out < 1)
            return lgC_fail(ctx, LG_ERR_SHAPE,
                            "%s: scale_factor: %g times the input's size %lld gives an output "
                            "size 0; expected >= 1",
                            WHO, factor[d], (long long)dm->in);
    }
    return true;
}

/* ------------------------------------------------------------------ */
/* Shapes and tables                                                    */
/* ------------------------------------------------------------------ */

static bool interp_input(lg_ctx *ctx, const lg_tensor *x, interp_plan *p)
{
    if (!lgT_ok_float(ctx, x, WHO, "input"))
        return false;
    char sx[160];
    lgT_shape_str(x, sx, sizeof sx);
    if (x->ndim != 4)
        return lgC_fail(ctx, LG_ERR_SHAPE,
                        "%s: input is %s, expected 4 dims (N, C, H, W) (PyTorch reads a 3-d "
                        "input as [N, C, L], a 1-d resampling lossgrad does not offer)",
                        WHO, sx);
    if (x->shape[2] < 1 || x->shape[3] < 1)
        return lgC_fail(ctx, LG_ERR_SHAPE, "%s: input is %s, expected non-empty H and W", WHO, sx);
    p->planes = x->shape[0] * x->shape[1];
    p->dim[0].in = x->shape[2];
    p->dim[1].in = x->shape[3];
    return true;
}

/* Nearest's source of output o. PyTorch forms scale o in the element
 * type: in float for float32 (the scale rounded to float first), in
 * double for float64, then rounds it to float for floorf. The two can
 * differ by one source (in 61, factor 1.15, o 69: 59 and 60). */
static int64_t nearest_src(const interp_dim *d, int64_t o, bool f32)
{
    float s;
    if (f32) {
        float scale = d->factor != 0 ? (float)(1.0 / d->factor) : (float)d->in / (float)d->out;
        s = scale * (float)o;
    } else {
        double scale = d->factor != 0 ? 1.0 / d->factor : (double)d->in / (double)d->out;
        s = (float)(scale * (double)o);
    }
    int64_t i = (int64_t)floorf(s);
    return i < d->in - 1 ? i : d->in - 1;
}

/* One dim's sources and weights, as PyTorch 1.13's CPU kernels compute
 * them (the scale is 1 / factor when a factor is given, not in / out).
 * Bilinear's weights are continuous in r, so computing them in double for
 * both types changes the result by rounding only. */
static void interp_table(interp_dim *d, bool bilinear, bool align_corners, bool f32)
{
    int64_t I = d->in, O = d->out;
    double scale = d->factor != 0 ? 1.0 / d->factor : (double)I / (double)O;
    for (int64_t o = 0; o < O; o++) {
        if (!bilinear) {
            d->i0[o] = d->i1[o] = nearest_src(d, o, f32);
            d->l0[o] = 1, d->l1[o] = 0;
            continue;
        }
        if (O == I) { /* the identity, whatever the factor */
            d->i0[o] = d->i1[o] = o;
            d->l0[o] = 1, d->l1[o] = 0;
            continue;
        }
        double r;
        if (align_corners)
            r = O > 1 ? (double)(I - 1) / (double)(O - 1) * (double)o : 0.0;
        else
            r = fmax(scale * ((double)o + 0.5) - 0.5, 0.0);
        int64_t i0 = (int64_t)r;
        d->i0[o] = i0;
        d->i1[o] = i0 + (i0 < I - 1 ? 1 : 0);
        d->l1[o] = r - (double)i0;
        d->l0[o] = 1 - d->l1[o];
    }
}

static bool interp_tables(lg_ctx *ctx, interp_plan *p, bool f32)
{
    for (int k = 0; k < 2; k++) {
        interp_dim *d = &p->dim[k];
        size_t n = (size_t)d->out;
        unsigned char *t = lgC_salloc(ctx, n * (2 * sizeof(int64_t) + 2 * sizeof(double)), WHO);
        if (!t)
            return false;
        d->i0 = (int64_t *)t;
        d->i1 = d->i0 + n;
        d->l0 = (double *)(d->i1 + n);
        d->l1 = d->l0 + n;
        interp_table(d, p->bilinear, p->align_corners, f32);
    }
    return true;
}

/* ------------------------------------------------------------------ */
/* The op                                                               */
/* ------------------------------------------------------------------ */

static int64_t interp_work(const lg_tensor *x, const lg_tensor *y, const interp_plan *p)
{
    return x->numel + y->numel * (p->bilinear ? 4 : 1);
}

lg_tensor *lg_interpolate(lg_ctx *ctx, lg_tensor *input, const lg_interpolate_opts *o)
{
    if (!ctx || lgC_failed(ctx, WHO))
        return NULL;
    interp_plan p = { 0 };
    if (!interp_input(ctx, input, &p) || !interp_options(ctx, o, &p))
        return NULL;
    int64_t shape[4] = { input->shape[0], input->shape[1], p.dim[0].out, p.dim[1].out };
    lg_tensor *y = lgT_new(ctx, (lg_dtype)input->dtype, 4, shape, WHO);
    interp_plan *kept = y ? lgC_salloc(ctx, sizeof *kept, WHO) : NULL;
    if (!kept)
        return NULL;
    *kept = p;
    if (!interp_tables(ctx, kept, input->dtype == LG_F32))
        return NULL;
    struct interp_args a = { .p = kept, .x = input->data, .y = y->data };
    lgC_parallel(ctx, interp_work(input, y, kept), kept->planes,
                 input->dtype == LG_F32 ? interp_fw_f32 : interp_fw_f64, &a);
    y->aux = kept;
    return lgA_record(ctx, LGA_OP_interpolate, y, 1, &input);
}

lg_status lgA_bw_interpolate(lg_ctx *ctx, lg_tensor *y)
{
    lg_tensor *x = y->in[0];
    lg_tensor *dx = lgT_new_like(ctx, x, "lg_backward");
    if (!dx)
        return ctx->status;
    const interp_plan *p = y->aux;
    struct interp_args a = { .p = p, .x = dx->data, .y = y->grad->data };
    lgC_parallel(ctx, interp_work(x, y, p), p->planes,
                 x->dtype == LG_F32 ? interp_bw_f32 : interp_bw_f64, &a);
    return lgA_accum(ctx, x, dx);
}

/* ------------------------------------------------------------------ */
/* Taped backwards                                                      */
/* ------------------------------------------------------------------ */

/* The resampling's two linear maps on a copy of plan p, recorded as ops:
 * forward (src [N, C, H, W] -> [N, C, OH, OW], recorded as interpolate) or
 * its adjoint (back, recorded as interpolate_adjoint, the kernel of
 * lgA_bw_interpolate); the result shaped like `like`. Each is the other's
 * gradient. */
static lg_tensor *interp_map(lg_ctx *ctx, const interp_plan *p, bool adjoint, lg_tensor *src,
                             const lg_tensor *like)
{
    if (!src)
        return NULL;
    interp_plan *kept = lgC_salloc(ctx, sizeof *kept, "lg_grad");
    lg_tensor *y = kept ? lgT_new(ctx, (lg_dtype)src->dtype, 4, like->shape, "lg_grad") : NULL;
    if (!y)
        return NULL;
    *kept = *p; /* the tables are shared: read only */
    bool f32 = src->dtype == LG_F32;
    lg_tensor *in = adjoint ? y : src, *out = adjoint ? src : y;
    struct interp_args a = { .p = kept, .x = in->data, .y = out->data };
    if (adjoint)
        lgC_parallel(ctx, interp_work(in, out, kept), kept->planes,
                     f32 ? interp_bw_f32 : interp_bw_f64, &a);
    else
        lgC_parallel(ctx, interp_work(in, out, kept), kept->planes,
                     f32 ? interp_fw_f32 : interp_fw_f64, &a);
    y->aux = kept;
    return lgA_record(ctx, adjoint ? LGA_OP_interpolate_adjoint : LGA_OP_interpolate, y, 1, &src);
}

/* interpolate (y = R x, R linear): dx = R^T g, interpolate_adjoint of g. */
lg_status lgA_tbw_interpolate(lg_ctx *ctx, lg_tensor *y, lg_tensor *g)
{
    if (!lgA_tneeds(y, 0))
        return LG_OK;
    return lgA_taccum(ctx, y->in[0], interp_map(ctx, y->aux, true, g, y->in[0]));
}

/* interpolate_adjoint (y = R^T g): dg = R gy, the resampling of gy. */
lg_status lgA_bw_interpolate_adjoint(lg_ctx *ctx, lg_tensor *y)
{
    lg_tensor *g = y->in[0];
    lg_tensor *dg = lgT_new_like(ctx, g, "lg_backward");
    if (!dg)
        return ctx->status;
    const interp_plan *p = y->aux;
    struct interp_args a = { .p = p, .x = y->grad->data, .y = dg->data };
    lgC_parallel(ctx, interp_work(y, g, p), p->planes,
                 g->dtype == LG_F32 ? interp_fw_f32 : interp_fw_f64, &a);
    return lgA_accum(ctx, g, dg);
}

lg_status lgA_tbw_interpolate_adjoint(lg_ctx *ctx, lg_tensor *y, lg_tensor *gy)
{
    if (!lgA_tneeds(y, 0))
        return LG_OK;
    return lgA_taccum(ctx, y->in[0], interp_map(ctx, y->aux, false, gy, y->in[0]));
}
