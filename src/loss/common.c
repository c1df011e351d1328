/* common.c: argument checks, options and reductions shared by the losses.
 * Uses the public API (plus the ctx error recorder); lgL_adopt_scaled, for
 * the fused primitives, the autograd internals. */
#include "../autograd/autograd.h"
#include "loss.h"

#include <string.h>

void lgL_shape_str(lg_tensor *t, char *buf, size_t n)
{
    size_t k = (size_t)snprintf(buf, n, "[");
    const int64_t *s = lg_tensor_shape(t);
    for (int i = 0; i < lg_tensor_ndim(t) && k < n; i++)
        k += (size_t)snprintf(buf + k, n - k, i ? ", %lld" : "%lld", (long long)s[i]);
    if (k < n)
        snprintf(buf + k, n - k, "]");
}

const char *lgL_dtype_name(lg_dtype dt)
{
    return dt == LG_F32 ? "float32" : (dt == LG_F64 ? "float64" : "int64");
}

bool lgL_float(lg_ctx *ctx, lg_tensor *t, const char *who, const char *arg)
{
    if (!t) {
        lgC_error(ctx, LG_ERR_NULL, "%s: %s is NULL", who, arg);
        return false;
    }
    if (lg_tensor_check(ctx, t) != LG_OK) /* records a stale-tensor error */
        return false;
    if (lg_tensor_dtype(t) == LG_I64) {
        lgC_error(ctx, LG_ERR_DTYPE, "%s: %s has dtype int64, expected float32 or float64", who,
                  arg);
        return false;
    }
    return true;
}

bool lgL_int(lg_ctx *ctx, lg_tensor *t, const char *who, const char *arg)
{
    if (!t) {
        lgC_error(ctx, LG_ERR_NULL, "%s: %s is NULL", who, arg);
        return false;
    }
    if (lg_tensor_check(ctx, t) != LG_OK)
        return false;
    if (lg_tensor_dtype(t) != LG_I64) {
        lgC_error(ctx, LG_ERR_DTYPE, "%s: %s has dtype %s, expected int64", who, arg,
                  lgL_dtype_name(lg_tensor_dtype(t)));
        return false;
    }
    return true;
}

double lgL_at(lg_tensor *t, int64_t i)
{
    const void *d = lg_tensor_data(t);
    switch (lg_tensor_dtype(t)) {
    case LG_F32: return ((const float *)d)[i];
    case LG_F64: return ((const double *)d)[i];
    default: return (double)((const int64_t *)d)[i];
    }
}

/* Does any element fall outside [lo, hi] (or, with pm1, differ from both
 * -1 and 1)? A branch-free scan (vector clones), over pieces split among the
 * ctx's threads, so that checking a million targets costs about as much as
 * reading them, and does not hold the other threads back. */
#define SCAN(T, C)                                                                                 \
    LGC_VECTOR_CLONES static int any_bad_##T(const T *v, int64_t n, double lo, double hi,          \
                                             bool pm1)                                             \
    {                                                                                              \
        int bad = 0;                                                                               \
        if (pm1)                                                                                   \
            for (int64_t i = 0; i < n; i++)                                                        \
                bad |= (v[i] != 1) & (v[i] != -1);                                                 \
        else                                                                                       \
            for (int64_t i = 0; i < n; i++)                                                        \
                bad |= !((C)v[i] >= (C)lo && (C)v[i] <= (C)hi);                                    \
        return bad;                                                                                \
    }
SCAN(float, float) /* lo and hi are exact in float for every caller: 0, 1, infinity */
SCAN(double, double)
SCAN(int64_t, double)

static int any_bad_piece(lg_dtype dt, const char *d, int64_t n, double lo, double hi, bool pm1)
{
    switch (dt) {
    case LG_F32: return any_bad_float((const float *)d, n, lo, hi, pm1);
    case LG_F64: return any_bad_double((const double *)d, n, lo, hi, pm1);
    default: return any_bad_int64_t((const int64_t *)d, n, lo, hi, pm1);
    }
}

bool lgL_any_bad(lg_ctx *ctx, lg_tensor *t, double lo, double hi, bool pm1)
{
    enum { PIECE = 1 << 16, GROUP = 256 }; /* groups of pieces: the flags stay on the stack */
    const char *d = lg_tensor_data(t);
    lg_dtype dt = lg_tensor_dtype(t);
    int64_t n = lg_tensor_numel(t), pieces = (n + PIECE - 1) / PIECE;
    size_t es = lgT_dtype_size(dt);
    for (int64_t g = 0; g < pieces; g += GROUP) {
        int bad[GROUP];
        int64_t k = pieces - g < GROUP ? pieces - g : GROUP;
        LGT_FOR(
            ctx, k > 1 ? n : 0, for (int64_t b = 0; b < k; b++) {
                int64_t at = (g + b) * PIECE, m = n - at < PIECE ? n - at : PIECE;
                bad[b] = any_bad_piece(dt, d + (size_t)at * es, m, lo, hi, pm1);
            });
        for (int64_t b = 0; b < k; b++)
            if (bad[b])
                return true;
    }
    return false;
}

bool lgL_in_range(lg_ctx *ctx, lg_tensor *t, double lo, double hi, const char *who, const char *arg)
{
    if (!lgL_any_bad(ctx, t, lo, hi, false))
        return true;
    int64_t n = lg_tensor_numel(t);
    for (int64_t i = 0; i < n; i++) { /* the first offender, for the message */
        double v = lgL_at(t, i);
        if (!(v >= lo && v <= hi)) {
            lgC_error(ctx, LG_ERR_VALUE, "%s: %s[%lld] = %g, expected every element in [%g, %g]",
                      who, arg, (long long)i, v, lo, hi);
            return false;
        }
    }
    return true;
}

bool lgL_same_shape(lg_tensor *a, lg_tensor *b)
{
    if (lg_tensor_ndim(a) != lg_tensor_ndim(b))
        return false;
    return memcmp(lg_tensor_shape(a), lg_tensor_shape(b),
                  (size_t)lg_tensor_ndim(a) * sizeof(int64_t)) == 0;
}

bool lgL_pair(lg_ctx *ctx, lg_tensor *input, lg_tensor *target, const char *who)
{
    if (!lgL_float(ctx, input, who, "input") || !lgL_float(ctx, target, who, "target"))
        return false;
    if (lg_tensor_dtype(input) != lg_tensor_dtype(target)) {
        lgC_error(ctx, LG_ERR_DTYPE, "%s: input is %s but target is %s, expected the same dtype",
                  who, lgL_dtype_name(lg_tensor_dtype(input)),
                  lgL_dtype_name(lg_tensor_dtype(target)));
        return false;
    }
    if (!lgL_same_shape(input, target)) {
        char a[160], b[160];
        lgL_shape_str(input, a, sizeof a);
        lgL_shape_str(target, b, sizeof b);
        lgC_error(ctx, LG_ERR_SHAPE,
                  "%s: input has shape %s but target has shape %s, expected the same shape "
                  "(losses do not broadcast input against target)",
                  who, a, b);
        return false;
    }
    return true;
}

bool lgL_reduction(lg_ctx *ctx, lg_reduction r, bool batchmean_ok, const char *who)
{
    if (r == LG_REDUCTION_MEAN || r == LG_REDUCTION_SUM || r == LG_REDUCTION_NONE ||
        (r == LG_REDUCTION_BATCHMEAN && batchmean_ok))
        return true;
    lgC_error(ctx, LG_ERR_VALUE,
              "%s: reduction %d is not valid here (expected MEAN, SUM or NONE%s)", who, (int)r,
              batchmean_ok ? " or BATCHMEAN" : "");
    return false;
}

bool lgL_broadcasts_into(lg_ctx *ctx, lg_tensor *w, lg_tensor *input, const char *who,
                         const char *arg)
{
    if (!w)
        return true;
    if (!lgL_float(ctx, w, who, arg))
        return false;
    if (lg_tensor_dtype(w) != lg_tensor_dtype(input)) {
        lgC_error(ctx, LG_ERR_DTYPE, "%s: %s is %s but input is %s, expected the same dtype", who,
                  arg, lgL_dtype_name(lg_tensor_dtype(w)), lgL_dtype_name(lg_tensor_dtype(input)));
        return false;
    }
    int wn = lg_tensor_ndim(w), xn = lg_tensor_ndim(input);
    bool ok = wn <= xn;
    for (int d = 0; ok && d < wn; d++) {
        int64_t ws = lg_tensor_shape(w)[wn - 1 - d], xs = lg_tensor_shape(input)[xn - 1 - d];
        ok = ws == 1 || ws == xs;
    }
    if (!ok) {
        char a[160], b[160];
        lgL_shape_str(w, a, sizeof a);
        lgL_shape_str(input, b, sizeof b);
        lgC_error(ctx, LG_ERR_SHAPE, "%s: %s of shape %s does not broadcast to input's shape %s",
                  who, arg, a, b);
    }
    return ok;
}

lg_tensor *lgL_reduce(lg_ctx *ctx, lg_tensor *l, lg_reduction r)
{
    switch (r) {
    case LG_REDUCTION_NONE: return l;
    case LG_REDUCTION_SUM: return lg_sum(ctx, l, 0, NULL, false);
    default: return lg_mean(ctx, l, 0, NULL, false);
    }
}

lg_status lgL_adopt_scaled(lg_ctx *ctx, lg_tensor *x, lg_tensor *gx, double g)
{
    if (g != 1) { /* in place: the forward's tensor is used once */
        int64_t n = gx->numel;
        if (gx->dtype == LG_F32) {
            float *v = LGT_F(gx), gf = (float)g;
            LGT_FOR(ctx, n, for (int64_t i = 0; i < n; i++) v[i] = v[i] * gf;);
        } else {
            double *v = LGT_D(gx);
            LGT_FOR(ctx, n, for (int64_t i = 0; i < n; i++) v[i] = v[i] * g;);
        }
    }
    return lgA_accum(ctx, x, gx);
}

static const lg_loss_opts loss_defaults = { .defaults_tag = LG_OPTS_TAG };
static const lgC_opts_desc loss_desc = LGC_DESC0(lg_loss_opts, loss_defaults);

lg_loss_opts lg_loss_opts_default(void)
{
    return loss_defaults;
}

static const lg_margin_opts margin_defaults = { .defaults_tag = LG_OPTS_TAG };
static const lgC_opts_desc margin_desc = LGC_DESC0(lg_margin_opts, margin_defaults);

lg_margin_opts lg_margin_opts_default(void)
{
    return margin_defaults;
}

bool lgL_opts_loss(lg_ctx *ctx, const char *who, const lg_loss_opts *user, lg_loss_opts *out)
{
    return lgC_opts(ctx, who, &loss_desc, user, out);
}

bool lgL_opts_margin(lg_ctx *ctx, const char *who, const lg_margin_opts *user, lg_margin_opts *out)
{
    return lgC_opts(ctx, who, &margin_desc, user, out);
}
